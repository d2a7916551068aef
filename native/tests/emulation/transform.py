# Rewrites a kernel file (.cu) into plain C++ for the host emulation of native/tests/emulation/run.sh.
import re, sys
src, dst = sys.argv[1], sys.argv[2]
s = open(src).read()
s = s.replace('#include <cuda_bf16.h>', '')
s = s.replace('extern __shared__ float smem[];', 'float *smem = reinterpret_cast<float *>(emu::dyn_smem);')
s = s.replace('extern __shared__ __align__(16) unsigned char smem_raw[];', 'unsigned char *smem_raw = emu::dyn_smem;')
s = s.replace('#else\n    (void)d;', '#else\n    emu_mma(d, a0, a1, a2, a3, b0, b1);\n    (void)d;')
# cp.async (16 bytes, zero-filled when not valid): a synchronous copy; commit/wait_group stay no-ops
s = s.replace('#else\n    (void)dst;\n    (void)src;\n    (void)valid;',
              '#else\n    if (valid) std::memcpy(dst, src, 16); else std::memset(dst, 0, 16);')
# ldmatrix.x4 (.trans): warp-collective, from the row addresses of all 32 lanes
s = s.replace('#else\n    (void)row;\n    r[0] = r[1] = r[2] = r[3] = 0u;',
              '#else\n    emu_ldmatrix_x4(r, reinterpret_cast<const uint16_t *>(row), Trans);')
# launches
out = []
i = 0
while True:
    j = s.find('<<<', i)
    if j < 0:
        out.append(s[i:]); break
    # kernel name: back from j over identifier chars, ::, <>
    k = j
    depth = 0
    while k > 0:
        c = s[k-1]
        if c == '>': depth += 1
        elif c == '<':
            if depth == 0: break
            depth -= 1
        elif not (c.isalnum() or c in '_:' or depth > 0): break
        k -= 1
    name = s[k:j]
    e = s.find('>>>(', j)
    cfg = s[j+3:e]
    # split cfg at top-level commas
    parts, d, cur = [], 0, ''
    for c in cfg:
        if c in '([<': d += 1
        if c in ')]>': d -= 1
        if c == ',' and d == 0: parts.append(cur); cur = ''
        else: cur += c
    parts.append(cur)
    out.append(s[i:k])
    out.append('emu::launch(%s, dim3(%s), dim3(%s), %s, ' % (name, parts[0].strip(), parts[1].strip(), parts[2].strip()))
    i = e + 4
s = ''.join(out)
hdr = '#include "emu.h"\n#define __global__\n#define __device__\n#define __host__\n#define __forceinline__ inline\n#define __launch_bounds__(...)\n#define __shared__ static\n#define __align__(x)\n'
open(dst, 'w').write(hdr + s)
