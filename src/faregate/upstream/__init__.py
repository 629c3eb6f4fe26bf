"""faregate's own HTTP/1.1 client for the upstream hot path (chat and embeddings calls).

http1.py       the wire, without I/O: a request's bytes, an incremental response parser
decode.py      gzip / deflate content decoding, in bounded pieces
connection.py  one connection's asyncio Protocol, and the Response it reads
pool.py        DNS cache, connect (TCP, TLS), the keep-alive pool per origin
client.py      UpstreamClient.request: the one entry point
errors.py      the client's error tree
"""
