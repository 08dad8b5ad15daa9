"""`yntymak hq serve`: bundles and receipts over HTTP (docs/http-api.md).

HTTP is only transport: a POSTed bundle goes through exactly what `hq import` runs
(`sync.hq.import_for_receipt`). starlette and uvicorn are imported only here, and only when
the command runs, so `yntymak --help` stays fast.
"""
