// Runs before uPlot, which formats numbers with `navigator.language` as it loads. Under the POSIX
// locale (LANG=C) WebKitGTK reports "C", which Intl rejects with a RangeError, and every chart
// would be missing. Such a locale reads as en-US instead.
(function () {
  try {
    new Intl.NumberFormat(navigator.language);
  } catch (e) {
    Object.defineProperty(Navigator.prototype, "language", { configurable: true, get: () => "en-US" });
    Object.defineProperty(Navigator.prototype, "languages", { configurable: true, get: () => ["en-US"] });
  }
})();
