"""The exhaustive split search of IQ1_S / IQ1_M (ggml's hot loop: IQ1_S 561 splits x 2 signs
per 32-weight block, IQ1_M 153 splits x 4 sign pairs per 16-weight block) for a batch of
blocks as SIMD lanes (CPU only; block_ops.search_s / search_m are the scalar form the CUDA
kernel runs).

Every block walks the same splits, so the lane loop is branch-free selects. Each lane's
float operations are ggml's, in ggml's order, but every product or sum that depends on one
split boundary only (IQ1_S: sumx[i1]*x_p[0], (sumx[32] - sumx[i2])*x_p[2], their sumw
counterparts; IQ1_M: tw*x_p[2]*x_p[2] + w[i1]*0.75, w[i2]*-1.25, ...) is computed once per
boundary into a table (the same operation on the same operands gives the same bits), and
x_m[1] = -x_p[1] makes (wb*x_m[1])*x_m[1] equal (wb*x_p[1])*x_p[1]. A lane keeps only its best
score and the winning split as one exact float code; the winner's scale is recomputed once
at the end with the same operations (five state rows read and written per split were as
costly as the arithmetic).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..shared.ops import F
from . import block_ops as bo

_JIT = dict(cache=True, error_model="numpy", boundscheck=False)
P0, P1, P2 = (F(v) for v in bo.X_P)
M0, M1, M2 = (F(v) for v in bo.X_M)
NEG_MAX = -bo.FLT_MAX
S_TABLE_ROWS = 8 * 33            # search_s_lanes scratch rows
M_TABLE_ROWS = 8 * 17 + 4        # search_m_lanes scratch rows


@njit(**_JIT)
def search_s_lanes(SX, SW, nl, ST, T):
    """block_ops.search_s for nl blocks at once; SX, SW: (33, LANES) prefix sums, T:
    (S_TABLE_ROWS, LANES) scratch. ST rows out: scale, best score, i1, i2, shift (indices as
    exact floats; i1 = i2 = -1, shift 0 when nothing scored)."""
    AP, AM, WAP, WAM = T[0:33], T[33:66], T[66:99], T[99:132]
    TP, TM, WTP, WTM = T[132:165], T[165:198], T[198:231], T[231:264]
    s0, w0, sn, wn = SX[0], SW[0], SX[32], SW[32]
    for j in range(33):
        s, w = SX[j], SW[j]
        ap, am, wap, wam = AP[j], AM[j], WAP[j], WAM[j]
        tp, tm, wtp, wtm = TP[j], TM[j], WTP[j], WTM[j]
        for l in range(nl):
            a = s[l] - s0[l]
            wa = w[l] - w0[l]
            t = sn[l] - s[l]
            wt = wn[l] - w[l]
            ap[l] = a * P0
            am[l] = a * M0
            wap[l] = (wa * P0) * P0
            wam[l] = (wa * M0) * M0
            tp[l] = t * P2
            tm[l] = t * M2
            wtp[l] = (wt * P2) * P2
            wtm[l] = (wt * M2) * M2
    best, code = ST[1], ST[2]
    for l in range(nl):
        best[l] = NEG_MAX
        code[l] = F(-1)
    for i1 in range(33):
        s1, w1 = SX[i1], SW[i1]
        ap, am, wap, wam = AP[i1], AM[i1], WAP[i1], WAM[i1]
        for i2 in range(i1, 33):
            cp = F(2 * (33 * i1 + i2))       # the split and sign as one exact float
            cm = cp + F(1)
            s2, w2 = SX[i2], SW[i2]
            tp, tm, wtp, wtm = TP[i2], TM[i2], WTP[i2], WTM[i2]
            for l in range(nl):
                b = s2[l] - s1[l]
                wb = w2[l] - w1[l]
                bs, cc = best[l], code[l]
                wbp = (wb * P1) * P1
                sumqx = (ap[l] + b * P1) + tp[l]
                sumq2 = (wap[l] + wbp) + wtp[l]
                ok = (sumq2 > 0) & (sumqx * sumqx > bs * sumq2)
                bs = (sumqx / sumq2) * sumqx if ok else bs
                cc = cp if ok else cc
                sumqx = (am[l] + b * M1) + tm[l]
                sumq2 = (wam[l] + wbp) + wtm[l]
                ok = (sumq2 > 0) & (sumqx * sumqx > bs * sumq2)
                bs = (sumqx / sumq2) * sumqx if ok else bs
                cc = cm if ok else cc
                best[l], code[l] = bs, cc
    for l in range(nl):
        c = np.int32(code[l])
        if c < 0:
            ST[0, l], ST[2, l], ST[3, l], ST[4, l] = F(0), F(-1), F(-1), F(0)
            continue
        i1 = c // 66
        i2 = (c // 2) % 33
        b = SX[i2, l] - SX[i1, l]
        wbp = ((SW[i2, l] - SW[i1, l]) * P1) * P1
        if c % 2 == 0:
            sumqx = (AP[i1, l] + b * P1) + TP[i2, l]
            sumq2 = (WAP[i1, l] + wbp) + WTP[i2, l]
        else:
            sumqx = (AM[i1, l] + b * M1) + TM[i2, l]
            sumq2 = (WAM[i1, l] + wbp) + WTM[i2, l]
        ST[0, l] = sumqx / sumq2
        ST[2, l] = F(i1)
        ST[3, l] = F(i2)
        ST[4, l] = F(1) if c % 2 == 0 else F(-1)


@njit(**_JIT)
def search_m_lanes(PX, PW, nl, ST, T):
    """block_ops.search_m for nl blocks at once; PX, PW: (34, LANES) half prefix sums (row
    17*h + j), T: (M_TABLE_ROWS, LANES) scratch. ST rows out: scale, best score, i1, i2, sign
    pair k (0: ++, 1: +-, 2: -+, 3: --; -1 when nothing scored)."""
    HP0, HM0, HP1, HM1 = T[0:17], T[17:34], T[34:51], T[51:68]
    GP0, GM0, GP1, GM1 = T[68:85], T[85:102], T[102:119], T[119:136]
    XP0, XM0, XP1, XM1 = T[136], T[137], T[138], T[139]
    for h in range(2):
        tx, tw = PX[17 * h + 16], PW[17 * h + 16]
        xp, xm = T[136 + 2 * h], T[137 + 2 * h]
        for l in range(nl):
            xp[l] = tx[l] * P2
            xm[l] = tx[l] * M2
        for j in range(17):
            w = PW[17 * h + j]
            hp, hm, gp, gm = T[34 * h + j], T[34 * h + 17 + j], T[68 + 34 * h + j], \
                T[85 + 34 * h + j]
            for l in range(nl):
                hp[l] = (tw[l] * P2) * P2 + w[l] * F(0.75)
                hm[l] = (tw[l] * M2) * M2 + w[l] * F(1.25)
                gp[l] = w[l] * F(-1.25)
                gm[l] = w[l] * F(-0.75)
    best, code = ST[1], ST[2]
    for l in range(nl):
        best[l] = NEG_MAX
        code[l] = F(-1)
    for i1 in range(17):
        x10, x11 = PX[i1], PX[17 + i1]
        hp0, hm0, hp1, hm1 = HP0[i1], HM0[i1], HP1[i1], HM1[i1]
        for i2 in range(i1, 17):
            c0 = F(4 * (17 * i1 + i2))        # the split and sign pair as one exact float
            x20, x21 = PX[i2], PX[17 + i2]
            gp0, gm0, gp1, gm1 = GP0[i2], GM0[i2], GP1[i2], GM1[i2]
            for l in range(nl):
                sx0 = x10[l] + x20[l]
                sx1 = x11[l] + x21[l]
                qxp0 = XP0[l] - sx0
                qxm0 = XM0[l] - sx0
                qxp1 = XP1[l] - sx1
                qxm1 = XM1[l] - sx1
                q2p0 = hp0[l] + gp0[l]
                q2m0 = hm0[l] + gm0[l]
                q2p1 = hp1[l] + gp1[l]
                q2m1 = hm1[l] + gm1[l]
                bs, cc = best[l], code[l]
                for k in range(4):
                    sumqx = (qxp0 if k < 2 else qxm0) + (qxp1 if k % 2 == 0 else qxm1)
                    sumq2 = (q2p0 if k < 2 else q2m0) + (q2p1 if k % 2 == 0 else q2m1)
                    ok = (sumq2 > 0) & (sumqx * sumqx > bs * sumq2)
                    bs = (sumqx / sumq2) * sumqx if ok else bs
                    cc = c0 + F(k) if ok else cc
                best[l], code[l] = bs, cc
    for l in range(nl):
        c = np.int32(code[l])
        if c < 0:
            ST[0, l], ST[2, l], ST[3, l], ST[4, l] = F(0), F(-1), F(-1), F(-1)
            continue
        k = c % 4
        i1 = c // 68
        i2 = (c // 4) % 17
        sx0 = PX[i1, l] + PX[i2, l]
        sx1 = PX[17 + i1, l] + PX[17 + i2, l]
        qx0 = XP0[l] - sx0 if k < 2 else XM0[l] - sx0
        qx1 = XP1[l] - sx1 if k % 2 == 0 else XM1[l] - sx1
        q20 = HP0[i1, l] + GP0[i2, l] if k < 2 else HM0[i1, l] + GM0[i2, l]
        q21 = HP1[i1, l] + GP1[i2, l] if k % 2 == 0 else HM1[i1, l] + GM1[i2, l]
        ST[0, l] = (qx0 + qx1) / (q20 + q21)
        ST[2, l] = F(i1)
        ST[3, l] = F(i2)
        ST[4, l] = F(k)
