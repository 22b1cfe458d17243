// Test fixtures for the strategy detail screen: a small 3 × 3 × 3 stress grid and its payoff.
import type { RiskView, RuleDistanceView, StrategyDetail, StressCellView } from "../bindings";
import { strategy } from "./fakeBackend";

export const stressCell = (movePct: number, volMult: number, spreadMult: number, loss: number): StressCellView => ({
  movePct,
  volMult,
  spreadMult,
  pnl: -loss + 20 * spreadMult,
  liquidationCost: 20 * spreadMult,
  loss,
});

/** Loss grows with the move (downside more), the IV multiplier and the spread multiplier. */
export const gridLoss = (move: number, vol: number, spread: number) =>
  Math.round((Math.abs(move) * (move < 0 ? 90 : 60) - 150) * vol + 50 * spread);

export function riskView(over: Partial<RiskView> = {}): RiskView {
  const movesPct = [-15, 0, 15];
  const volMults = [1, 1.3, 1.5];
  const spreadMults = [1, 1.5, 2];
  const cells: StressCellView[] = [];
  for (const m of movesPct) for (const v of volMults) for (const s of spreadMults) cells.push(stressCell(m, v, s, gridLoss(m, v, s)));
  return {
    underlying: "SPY",
    spot: 575.2,
    strikes: [540, 550, 600, 610],
    payoff: [
      { spot: 530, pnlExpiry: -690, pnlToday: -610 },
      { spot: 575, pnlExpiry: 310, pnlToday: 45 },
      { spot: 620, pnlExpiry: -690, pnlToday: -580 },
    ],
    movesPct,
    volMults,
    spreadMults,
    cells,
    worst: stressCell(-15, 1.5, 2, gridLoss(-15, 1.5, 2)),
    ...over,
  };
}

export const ruleDistance = (over: Partial<RuleDistanceView> = {}): RuleDistanceView => ({
  ruleId: "tp-50",
  kind: "profit_target",
  action: "alert",
  dryRun: false,
  status: "clear",
  trigger: "+$155.00 (50 % of credit)",
  current: "+$45.00",
  distance: "$110.00 to go",
  progress: 0.29,
  ...over,
});

export function strategyDetail(over: Partial<StrategyDetail> = {}): StrategyDetail {
  return {
    strategy: strategy(),
    greeks: { delta: -3.2, gamma: -0.41, vega: -28.5, theta: 14.75, complete: true },
    risk: riskView(),
    riskError: null,
    marginBuffer: 80000,
    worstExceedsBuffer: false,
    rules: [ruleDistance()],
    rulesError: null,
    rulesPath: "/home/t/.config/tradeguard/risk.toml",
    assignment: {
      shape: "iron_condor",
      intended: false,
      stock: "close",
      wheel: false,
      stockChoice: null,
      text: "An assignment breaks it: marked Broken and closed, shorts first (at the open when the market is closed); delivered shares are sold (bought back if short) at once.",
    },
    ...over,
  };
}
