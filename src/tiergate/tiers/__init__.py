"""Who answers: one module per kind of tier, all behind the interface in ``base.py``."""
