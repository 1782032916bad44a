from stratum_kernel.cli import main

raise SystemExit(main())
