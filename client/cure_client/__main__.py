from cure_client.cli import main

raise SystemExit(main())
