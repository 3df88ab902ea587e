from tasbench.cli import main

raise SystemExit(main())
