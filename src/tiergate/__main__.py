from tiergate.cli.main import main

raise SystemExit(main())
