// Load .heapsnapshot files with DevTools' own loader (heap-snapshot-toolkit) and print
// what DevTools would show, as JSON: usage: node check.mjs FILE [FILE2] [--ids ID,ID]
import { createReadStream } from 'node:fs'
import { parse, diff } from 'heap-snapshot-toolkit'
import { DevToolsAPI } from 'heap-snapshot-toolkit'

const args = process.argv.slice(2)
const idsArg = args.indexOf('--ids')
const ids = idsArg >= 0 ? args.splice(idsArg, 2)[1].split(',').map(Number) : []
const [file, file2] = args

function retainerChain (snapshot, id) {
  // Walk from the node up through the retainer closest to the root, as DevTools lists it.
  let node = null
  for (let it = snapshot.allNodes(); it.hasNext(); it.next()) {
    if (it.item().id() === id) { node = snapshot.createNode(it.item().nodeIndex); break }
  }
  if (!node) return null
  const chain = []
  const seen = new Set()
  while (node && !node.isRoot() && !seen.has(node.id()) && chain.length < 100) {
    seen.add(node.id())
    let best = null
    let bestEdge = null
    for (let r = node.retainers(); r.hasNext(); r.next()) {
      const edge = r.item()
      const retainer = edge.node()
      if (best === null || retainer.distance() < best.distance()) {
        best = retainer.clone ? retainer : retainer
        bestEdge = { edge: String(edge.name()), type: edge.type(), retainer: retainer.name() }
        best = snapshot.createNode(retainer.nodeIndex)
      }
    }
    if (!bestEdge) break
    chain.push(bestEdge)
    node = best
  }
  return chain
}

const s1 = await parse(createReadStream(file, 'utf-8'))
const aggregates = s1.aggregatesWithFilter(new DevToolsAPI.HeapSnapshotModel.NodeFilter())
const out = {
  nodeCount: s1.nodeCount,
  edgeCount: s1.containmentEdges.length / s1.edgeFieldsCount,
  totalSize: s1.totalSize,
  rootRetained: s1.rootNode().retainedSize(),
  aggregates: Object.fromEntries(Object.entries(aggregates).map(
    ([k, a]) => [a.name, { count: a.count, self: a.self, maxRet: a.maxRet }])),
  chains: Object.fromEntries(ids.map(id => [id, retainerChain(s1, id)]))
}
if (file2) {
  const s2 = await parse(createReadStream(file2, 'utf-8'))
  const d = await diff(s1, s2)
  out.diff = Object.fromEntries(Object.values(d).map(x => [x.name, {
    addedCount: x.addedCount, removedCount: x.removedCount, countDelta: x.countDelta
  }]))
}
process.stdout.write(JSON.stringify(out))
