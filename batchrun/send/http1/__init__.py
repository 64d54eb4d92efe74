"""The live requests' wire: HTTP/1.1 keep-alive connections to one origin, answers parsed by
httptools (llhttp, the parser Node and uvicorn use). `pool.Http1Pool` holds an origin's
connections; `connection.Connection` carries one exchange at a time.

Why not aiohttp's ClientSession on this path: measured on loopback, a `session.post` and its
`read()` cost ~100 µs of CPU per request above the socket work (request and response objects, a
payload, a stream reader, the cookie jar, three timers), as much as the rest of batchrun's work on
a record together, and a job at zero latency is bound by that CPU (`bench/throughput.py`). A
request here is one prebuilt head, one `write`, one parser fed from `data_received`, one timer.
aiohttp still does everything else (the Batch API's files, the simulator, notifications).
"""
