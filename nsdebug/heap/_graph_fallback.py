"""The graph loops in pure Python, for an install without the compiled _graphc module
(no C compiler): the same results, slower by one or two orders of magnitude. The tests
check both against each other."""

from __future__ import annotations

from array import array

import numpy as np


def bfs_parents(edge_start, e_to, n, parent, phase, found):
    """parent[v] = the edge by which a BFS from node 0 first reached v, else -1; a node
    with phase p > 0 is expanded only after all of lower phases; found[v] = the phase
    in which v was reached (255: never)."""
    start, to, ph = memoryview(edge_start), memoryview(e_to), phase.tolist()
    parent[:] = -1
    found[:] = 255
    seen = bytearray(n)
    seen[0] = 1
    found[0] = 0
    queue, deferred, current = [0], [], 0
    while True:
        head = 0
        while head < len(queue):
            v = queue[head]
            head += 1
            if ph[v] > current:
                deferred.append(v)
                continue
            for e in range(start[v], start[v + 1]):
                t = to[e]
                if not seen[t]:
                    seen[t] = 1
                    parent[t] = e
                    found[t] = current
                    queue.append(t)
        if not deferred:
            break
        current = min(ph[v] for v in deferred)
        queue = [v for v in deferred if ph[v] == current]
        deferred = [v for v in deferred if ph[v] != current]


def bfs_more(edge_start, e_to, n, seeds, phase, found):
    """A BFS from `seeds` over the nodes not yet found (found 255), marked `phase`;
    returns how many it marked."""
    start, to = memoryview(edge_start), memoryview(e_to)
    queue, head, marked = [int(v) for v in seeds], 0, 0
    while head < len(queue):
        v = queue[head]
        head += 1
        for e in range(start[v], start[v + 1]):
            t = to[e]
            if found[t] == 255:
                found[t] = phase
                marked += 1
                queue.append(t)
    return marked


def dominators(g, idom_out, order_out):
    """Cooper, Harvey & Kennedy's iterative algorithm; fills idom (-1 unreached) and the
    reached nodes in an order where each comes after its dominator. Returns the count."""
    n = g.n
    start = memoryview(g.edge_start)
    to = memoryview(g.e_to)
    post = array("i")
    state = bytearray(n)
    stack = [(0, start[0])]
    state[0] = 1
    while stack:
        v, e = stack[-1]
        if e < start[v + 1]:
            stack[-1] = (v, e + 1)
            t = to[e]
            if not state[t]:
                state[t] = 1
                stack.append((t, start[t]))
        else:
            stack.pop()
            post.append(v)
    del state, stack
    order = array("i", [-1]) * n              # postorder number, -1 unreached
    for k, v in enumerate(post):
        order[v] = k
    rstart_np, redge_np = g.reverse()
    rstart = memoryview(rstart_np)
    preds_np = np.searchsorted(g.edge_start, redge_np, side="right") - 1
    preds = memoryview(preds_np.astype(np.int32))
    idom = array("i", [-1]) * n
    idom[0] = 0
    changed = True
    while changed:
        changed = False
        for k in range(len(post) - 2, -1, -1):   # reverse postorder, root (last) skipped
            v = post[k]
            new = -1
            for j in range(rstart[v], rstart[v + 1]):
                p = preds[j]
                if idom[p] < 0:
                    continue
                if new < 0:
                    new = p
                    continue
                a, b = p, new
                while a != b:
                    while order[a] < order[b]:
                        a = idom[a]
                    while order[b] < order[a]:
                        b = idom[b]
                new = a
            if new != idom[v]:
                idom[v] = new
                changed = True
    idom_out[:] = np.frombuffer(idom, dtype=np.int32)
    # Reverse postorder: every node after its dominator.
    reached = np.frombuffer(post, dtype=np.int32)[::-1]
    order_out[:len(reached)] = reached
    return len(reached)


def retained(order, idom, size, out):
    out[:] = size
    ret = out.tolist()
    dom = idom.tolist()
    for v in order[::-1].tolist():           # each node before its dominator
        d = dom[v]
        if d != v:
            ret[d] += ret[v]
    out[:] = ret


def group_retained(idom, group, retained, out):
    """Union retained size per group: a DFS of the dominator tree counting, per group,
    its nodes on the current path."""
    n = len(idom)
    kids = [[] for _ in range(n)]
    for v, d in enumerate(idom.tolist()):
        if v and d >= 0 and d != v:
            kids[d].append(v)
    grp, ret = group.tolist(), retained.tolist()
    # The root is on every path (as in _graphc.c): its group's nodes below it are inside
    # its retained set already (found by fuzz/h_graph.py: a KeyError here before).
    onpath = {grp[0]: 1} if grp[0] >= 0 else {}
    acc = [0] * len(out)
    stack = [(0, iter(kids[0]))]
    while stack:
        v, it = stack[-1]
        c = next(it, None)
        if c is None:
            stack.pop()
            if grp[v] >= 0:
                onpath[grp[v]] -= 1
            continue
        g = grp[c]
        if g >= 0:
            if not onpath.get(g):
                acc[g] += ret[c]
            onpath[g] = onpath.get(g, 0) + 1
        stack.append((c, iter(kids[c])))
    out[:] = acc
