"""tiergate: answer each Claude request with the cheapest tier that is good enough."""

from tiergate.core.cost import Cost, price_usage
from tiergate.core.prices import ModelPrice, PriceBook, UnknownModelError, load_price_book
from tiergate.core.usage import Usage

__version__ = "0.1.0"

__all__ = [
    "Cost",
    "ModelPrice",
    "PriceBook",
    "UnknownModelError",
    "Usage",
    "__version__",
    "load_price_book",
    "price_usage",
]
