"""Use cases. Each talks to ports (unit of work, artifact store, executor), never to HTTP."""
