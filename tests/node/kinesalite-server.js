// Starts kinesalite for the target-kinesis tests, bound to 127.0.0.1 only.
// Usage: node kinesalite-server.js PORT
// kinesalite's own CLI listens on every interface, and streams stay CREATING
// for 500 ms by default; this wrapper binds to loopback and makes stream
// changes instant. With no `path` option kinesalite keeps its data in memdown
// (in memory), so the optional native leveldown is never loaded.
'use strict'

const kinesalite = require('kinesalite')

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node kinesalite-server.js PORT')
  process.exit(2)
}

const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 })
server.listen(port, '127.0.0.1', () => {
  const address = server.address()
  console.log('kinesalite listening at http://%s:%d', address.address, address.port)
})

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0))
}
