#!/usr/bin/env python3
"""Time QuantLib-Python on the same European and American cases our criterion bench uses.

The cases are read from crates/pricing/tests/data/pricing_reference.json (the `european_bsm`
and `american` sections, t = days/365). For each section the script times, per case, one full
re-pricing in QuantLib-Python (spot quote bumped so the instrument recalculates):
  * European: AnalyticEuropeanEngine, NPV + delta, gamma, vega, theta, rho, dividendRho;
  * American: QdFpAmericanEngine with QuantLib's fastScheme (the same algorithm as ours);
  * the option chain of the chain bench: implied std dev from each mid, then BlackCalculator
    price and Greeks, per option.

Invocation (run AFTER `cargo bench -p tradeguard-pricing`, so our figure files exist):

    python3 -m venv .venv-bench && .venv-bench/bin/pip install QuantLib
    TRADEGUARD_BENCH_DIR=artifacts/bench .venv-bench/bin/python crates/pricing/bench/quantlib_compare.py

It prints one JSON object on stdout and writes figure files to $TRADEGUARD_BENCH_DIR (default
<workspace>/artifacts/bench): quantlib_european_ns.json, quantlib_american_us.json and, when our
pricing_european_ns.json / pricing_american_us.json are present, the ratios
ratio_european_vs_quantlib.json / ratio_american_vs_quantlib.json (QuantLib time / our time).
"""

import json
import math
import os
import pathlib
import statistics
import sys
import time

import QuantLib as ql

HERE = pathlib.Path(__file__).resolve().parent
REFERENCE = HERE.parent / "tests" / "data" / "pricing_reference.json"
WORKSPACE = HERE.parent.parent.parent


def bench_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("TRADEGUARD_BENCH_DIR", WORKSPACE / "artifacts" / "bench"))


def build(case, today, american):
    spot = ql.SimpleQuote(case["spot"])
    dc = ql.Actual365Fixed()
    r = ql.YieldTermStructureHandle(ql.FlatForward(today, case["r"], dc))
    q = ql.YieldTermStructureHandle(ql.FlatForward(today, case.get("q", 0.0), dc))
    vol = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), case["vol"], dc))
    process = ql.BlackScholesMertonProcess(ql.QuoteHandle(spot), q, r, vol)
    kind = ql.Option.Call if case["type"] == "call" else ql.Option.Put
    payoff = ql.PlainVanillaPayoff(kind, case["strike"])
    maturity = today + int(case["days"])
    if american:
        option = ql.VanillaOption(payoff, ql.AmericanExercise(today, maturity))
        option.setPricingEngine(ql.QdFpAmericanEngine(process, ql.QdFpAmericanEngine.fastScheme()))
    else:
        option = ql.VanillaOption(payoff, ql.EuropeanExercise(maturity))
        option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return spot, option, case["spot"]


def time_cases(built, greeks, rounds=7, reps=None):
    """Median over rounds of the mean seconds per case re-pricing."""
    reps = reps or max(1, 2000 // len(built))
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(reps):
            bump = 1e-9 * ((i % 2) * 2 - 1)
            for quote, option, s0 in built:
                quote.setValue(s0 + bump)  # invalidates the cached result
                option.NPV()
                if greeks:
                    option.delta()
                    option.gamma()
                    option.vega()
                    option.theta()
                    option.rho()
                    option.dividendRho()
        samples.append((time.perf_counter() - start) / (reps * len(built)))
    return statistics.median(samples)


def sample_chain(spot, r, q, expiries, strikes):
    """The chain of `tradeguard_pricing::chain::sample_chain`: the same strikes, expiries, smile
    and quotes a cent either side of the Black-Scholes price (QuantLib's BlackCalculator)."""
    out = []
    for e in range(expiries):
        t = (7.0 + 14.0 * e) / 365.0
        df, fwd = math.exp(-r * t), spot * math.exp((r - q) * t)
        for k in range(strikes):
            strike = spot * (0.7 + 0.6 * k / max(strikes - 1, 1))
            m = math.log(strike / spot)
            vol = 0.18 + 0.25 * m * m - 0.08 * m
            for kind in (ql.Option.Call, ql.Option.Put):
                px = ql.BlackCalculator(ql.PlainVanillaPayoff(kind, strike), fwd, vol * math.sqrt(t), df).value()
                bid, ask = max(px - 0.01, 0.0), px + 0.01
                out.append((kind, strike, t, df, fwd, bid, ask))
    return out


def time_chain(chain, spot, rounds=5):
    """Median over rounds of the seconds per option: implied vol from the mid (QuantLib's
    blackFormulaImpliedStdDev) then price and Greeks (BlackCalculator), one-sided quotes skipped
    as ours skips them."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for kind, strike, t, df, fwd, bid, ask in chain:
            if bid <= 0.0:
                continue
            mid = 0.5 * (bid + ask)
            try:
                sd = ql.blackFormulaImpliedStdDev(kind, strike, fwd, mid, df)
            except RuntimeError:
                continue
            c = ql.BlackCalculator(ql.PlainVanillaPayoff(kind, strike), fwd, sd, df)
            c.value()
            c.delta(spot)
            c.gamma(spot)
            c.vega(t)
            c.theta(spot, t)
            c.rho(t)
            c.dividendRho(t)
        samples.append((time.perf_counter() - start) / len(chain))
    return statistics.median(samples)


def write_figure(fid, metric, value, unit, goal):
    d = bench_dir()
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{fid}.json").write_text(
        json.dumps({"id": fid, "metric": metric, "value": round(value, 3), "unit": unit, "goal": goal}) + "\n"
    )


def read_figure(fid):
    path = bench_dir() / f"{fid}.json"
    try:
        return json.loads(path.read_text())["value"]
    except (OSError, ValueError, KeyError):
        return None


def main():
    ref = json.loads(REFERENCE.read_text())
    today = ql.Date(15, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    euro = [build(c, today, False) for c in ref["european_bsm"]]
    amer = [build(c, today, True) for c in ref["american"]]
    # Sanity: QuantLib reproduces the reference prices it generated.
    for (_, option, _), case in zip(euro, ref["european_bsm"]):
        assert abs(option.NPV() - case["price"]) < 1e-8, case["id"]
    euro_ns = time_cases(euro, greeks=True) * 1e9
    amer_us = time_cases(amer, greeks=False, reps=20) * 1e6
    result = {
        "quantlib_version": ql.__version__,
        "european_cases": len(euro),
        "american_cases": len(amer),
        "quantlib_european_ns": euro_ns,
        "quantlib_american_us": amer_us,
    }
    write_figure("quantlib_european_ns", "QuantLib-Python European NPV + 6 Greeks (same cases)", euro_ns, "ns", "reference")
    write_figure("quantlib_american_us", "QuantLib-Python QdFp fastScheme American NPV (same cases)", amer_us, "us", "reference")
    ours_e = read_figure("pricing_european_ns")
    ours_a = read_figure("pricing_american_us")
    if ours_e:
        result["ours_european_ns"] = ours_e
        result["ratio_european"] = euro_ns / ours_e
        write_figure("ratio_european_vs_quantlib", "European: QuantLib-Python time / ours", euro_ns / ours_e, "x", "> 1 (faster)")
    if ours_a:
        result["ours_american_us"] = ours_a
        result["ratio_american"] = amer_us / ours_a
        write_figure("ratio_american_vs_quantlib", "American: QuantLib-Python time / ours", amer_us / ours_a, "x", "> 1 (faster)")
    chain = sample_chain(575.0, 0.04, 0.01, 20, 100)
    chain_ns = time_chain(chain, 575.0) * 1e9
    result["quantlib_chain_ns_per_option"] = chain_ns
    write_figure(
        "quantlib_chain_ns_per_option",
        "QuantLib-Python option chain: implied std dev from the mid + BlackCalculator price and Greeks, per option (same chain)",
        chain_ns,
        "ns",
        "reference",
    )
    ours_c = read_figure("pricing_chain_ns_per_option")
    if ours_c:
        result["ratio_chain"] = chain_ns / ours_c
        write_figure("ratio_chain_vs_quantlib", "Option chain: QuantLib-Python time / ours", chain_ns / ours_c, "x", "> 1 (faster)")
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
