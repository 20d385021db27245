"""``python -m proxyproto_rs``: the ``proxyproto`` command."""

from proxyproto_rs.cli import main

raise SystemExit(main())
