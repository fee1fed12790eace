"""A function's call-frame rows read from a table made by one run of its program (the
eval loop's, once per Python call nesting) are the rows a run to each address gives:
checked at random addresses of the largest programs the threads of a real core are in."""

import random
from bisect import bisect_right

from nsdebug.corefile import open_core
from nsdebug.native import cfi
from nsdebug.native.symbolize import Symbolizer
from nsdebug.native.unwind import Unwinder


def test_rows_from_the_table_are_the_rows_of_a_run(cores, build):
    p = open_core(cores.stacks(build).core)
    u = Unwinder(p, Symbolizer(p))
    programs = {}
    for t in p.threads:
        for f in u.unwind(t):
            m = p.module_at(f.pc)
            mc = u._module_cfi(m) if m is not None else None
            if mc is None:
                continue
            pc = f.pc - 1 - m.bias
            for finder in (mc._eh_fde, mc._debug_fde):
                fde = finder(pc)
                if fde is not None and fde[1] <= pc < fde[1] + fde[2]:
                    programs[(m.path, fde[1])] = fde
                    break
    largest = sorted(programs.values(), key=lambda fde: -len(fde[3]))[:3]
    assert largest and len(largest[0][3]) > 100      # the eval loop's is thousands
    rnd = random.Random(11)
    for cie, begin, size, program in largest:
        initial = cfi.run_program(cie.program, cie, cfi.Row(), begin, 1 << 64, None)
        trace = []
        cfi.run_program(program, cie, initial.copy(), begin, 1 << 64, initial, trace)
        starts = [a for a, _row in trace]
        for pc in [begin, begin + size - 1] + [begin + rnd.randrange(size) for _ in range(200)]:
            one = cfi.run_program(program, cie, initial.copy(), begin, pc, initial)
            kept = trace[max(0, bisect_right(starts, pc) - 1)][1]
            assert (one.cfa_reg, one.cfa_off, one.cfa_expr, one.rules) == \
                (kept.cfa_reg, kept.cfa_off, kept.cfa_expr, kept.rules), hex(pc)
