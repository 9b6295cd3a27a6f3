"""The wire format, shared by client and server, and nothing of either side.

* `batchcraft.service.wire.channel`: the service's name and the channel options both ends set.
* `batchcraft.service.wire.codec`: Arrow IPC encoding of schemas, batches, candidates and
  feedback, and their decoding to numpy.
* `batchcraft.service.wire.header`: a batch's header fields (position, weights, selector info).
* `batchcraft.service.wire.response`: batch responses assembled around, and read from, Arrow
  IPC payloads without copies.
* `batchcraft.service.wire.ipc` and `batchcraft.service.wire.assembly`: the server's halves of
  that assembly (IPC messages as parts, rows gathered straight into the response bytes).

Of the batcher it imports only `batchcraft.batcher.config` (positions), so a trainer
that imports the client loads no selector, job or registry.
"""
