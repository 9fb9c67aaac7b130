from zslab.cli import main

raise SystemExit(main())
