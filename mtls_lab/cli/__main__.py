from mtls_lab.cli.command import main

raise SystemExit(main())
