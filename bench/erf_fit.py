"""erf_fit.py - the coefficient table of kernels/erf.c: for each of eight intervals of |x| (width 0.5 up
to 4), a degree-10 least-squares polynomial in u = |x| - c_k fitted on 400 Chebyshev nodes against
math.erf (interval 0: c = 0 and no constant term). Prints each interval's error after rounding the
coefficients to float32, then the table rows ERF_COEF[j][k]. Run: /usr/bin/python3 bench/erf_fit.py"""
import numpy as np, math
D=9
rows=[]
for k in range(8):
    a,b=0.5*k,0.5*k+0.5
    c=0.0 if k==0 else a+0.25
    xs=(a+b)/2+(b-a)/2*np.cos(np.pi*(np.arange(400)+0.5)/400)
    ys=np.array([math.erf(x) for x in xs])
    u=xs-c
    if k==0:
        A=np.vstack([u**j for j in range(1,D+2)]).T  # odd-ish fit, no constant; degree D+1
        co=np.linalg.lstsq(A,ys,rcond=None)[0]; co=np.concatenate([[0.0],co])[:D+2]
    else:
        A=np.vstack([u**j for j in range(0,D+2)]).T
        co=np.linalg.lstsq(A,ys,rcond=None)[0]
    # iterate: refit after rounding lower coeffs? simple: round to float32
    co32=co.astype(np.float32)
    err=np.max(np.abs(sum(co32[j].astype(np.float64)*u**j for j in range(len(co32)))-ys))
    rows.append((c,co32,err))
    print(k,c,err)
print("ncoef",D+2)
for j in range(D+2):
    print("    {"+", ".join("%.9ef"%r[1][j] for r in rows)+"},")
