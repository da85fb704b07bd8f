-- wrk script for JSON POSTs: the body comes from WRK_BODY (benchmarks/run.py sets it), the rest from the command.
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
