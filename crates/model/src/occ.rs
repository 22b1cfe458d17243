//! OCC option symbology: parse and format `"SPY   250117P00440000"`.
//!
//! Layout: root (1–6 chars, space-padded to 6), expiry `YYMMDD`, `C`/`P`, strike × 1000 in 8
//! digits. The compact form without padding (`"SPY250117P00440000"`) is accepted on input;
//! output is always the padded 21-char form. Dates are read as 20YY.

use crate::instrument::{ExerciseStyle, OptionClass, OptionContract, Right};
use crate::money::{Price, SCALE};
use chrono::{Datelike, NaiveDate};

/// A malformed OCC symbol; each variant names the bad part and carries the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OccError {
    /// Wrong overall length or non-ASCII text.
    #[error("OCC symbol has a bad length (want 16..=21 ASCII chars): {0:?}")]
    Length(String),
    /// Root missing, too long, badly padded or not alphanumeric.
    #[error("OCC symbol has a bad root {root:?} in {symbol:?}")]
    Root {
        /// The root part.
        root: String,
        /// The whole symbol.
        symbol: String,
    },
    /// Expiry is not a valid YYMMDD date.
    #[error("OCC symbol has a bad expiry {date:?} in {symbol:?}")]
    Date {
        /// The date part.
        date: String,
        /// The whole symbol.
        symbol: String,
    },
    /// Right is not C or P.
    #[error("OCC symbol has a bad right {right:?} in {symbol:?}")]
    Right {
        /// The right part.
        right: String,
        /// The whole symbol.
        symbol: String,
    },
    /// Strike is not 8 digits or is zero.
    #[error("OCC symbol has a bad strike {strike:?} in {symbol:?}")]
    Strike {
        /// The strike part.
        strike: String,
        /// The whole symbol.
        symbol: String,
    },
}

impl OccError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Length(_) => "occ.bad_length",
            Self::Root { .. } => "occ.bad_root",
            Self::Date { .. } => "occ.bad_date",
            Self::Right { .. } => "occ.bad_right",
            Self::Strike { .. } => "occ.bad_strike",
        }
    }
}

/// Roots of cash-settled, European-style broad-based index options.
const BROAD_INDEX_ROOTS: &[&str] = &[
    "SPX", "SPXW", "SPXPM", "XSP", "NDX", "NDXP", "RUT", "RUTW", "VIX", "VIXW", "DJX", "OEX",
    "XEO", "MRUT",
];

/// Parses a padded or compact OCC symbol. Leading/trailing whitespace is ignored.
/// Multiplier is 100; well-known index roots (SPX, SPXW, NDX, RUT, VIX, XSP ...) are
/// European broad-index options, everything else American equity options.
pub fn parse(symbol: &str) -> Result<OptionContract, OccError> {
    let s = symbol.trim();
    if !s.is_ascii() || s.len() < 16 || s.len() > 21 {
        return Err(OccError::Length(symbol.to_owned()));
    }
    let split = s.len() - 15;
    let (head, tail) = s.split_at(split);
    let root = head.trim_end_matches(' ');
    let padded_ok = head.len() == 6 || head.len() == root.len();
    if root.is_empty()
        || root.len() > 6
        || !padded_ok
        || !root.as_bytes()[0].is_ascii_uppercase()
        || !root
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(OccError::Root {
            root: head.to_owned(),
            symbol: symbol.to_owned(),
        });
    }
    let (date_s, rest) = tail.split_at(6);
    let (right_s, strike_s) = rest.split_at(1);
    let date_err = || OccError::Date {
        date: date_s.to_owned(),
        symbol: symbol.to_owned(),
    };
    if !date_s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(date_err());
    }
    let num = |a: usize, b: usize| date_s[a..b].parse::<u32>().map_err(|_| date_err());
    let expiry = NaiveDate::from_ymd_opt(2000 + num(0, 2)? as i32, num(2, 4)?, num(4, 6)?)
        .ok_or_else(date_err)?;
    let right = match right_s {
        "C" => Right::Call,
        "P" => Right::Put,
        _ => {
            return Err(OccError::Right {
                right: right_s.to_owned(),
                symbol: symbol.to_owned(),
            });
        }
    };
    let strike_err = || OccError::Strike {
        strike: strike_s.to_owned(),
        symbol: symbol.to_owned(),
    };
    if !strike_s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(strike_err());
    }
    let milli: i64 = strike_s.parse().map_err(|_| strike_err())?;
    if milli == 0 {
        return Err(strike_err());
    }
    let broad = BROAD_INDEX_ROOTS.contains(&root);
    Ok(OptionContract {
        underlying: root.to_owned(),
        expiry,
        right,
        strike: Price::from_raw(milli * (SCALE / 1000)),
        multiplier: 100,
        style: if broad {
            ExerciseStyle::European
        } else {
            ExerciseStyle::American
        },
        class: if broad {
            OptionClass::BroadIndex
        } else {
            OptionClass::Equity
        },
    })
}

/// Formats the padded 21-char OCC symbol. Fails if the root is not 1–6 chars, the year is
/// outside 2000–2099, or the strike is ≤ 0, has more than 3 decimals or is ≥ 100 000.
pub fn format(o: &OptionContract) -> Result<String, OccError> {
    let sym = || format!("{} {} {}", o.underlying, o.expiry, o.strike);
    if o.underlying.is_empty() || o.underlying.len() > 6 || !o.underlying.is_ascii() {
        return Err(OccError::Root {
            root: o.underlying.clone(),
            symbol: sym(),
        });
    }
    if !(2000..2100).contains(&o.expiry.year()) {
        return Err(OccError::Date {
            date: o.expiry.to_string(),
            symbol: sym(),
        });
    }
    let raw = o.strike.raw();
    let per_milli = SCALE / 1000;
    if raw <= 0 || raw % per_milli != 0 || raw / per_milli > 99_999_999 {
        return Err(OccError::Strike {
            strike: o.strike.to_string(),
            symbol: sym(),
        });
    }
    let r = match o.right {
        Right::Call => 'C',
        Right::Put => 'P',
    };
    // Plain integer formatting: ids are built on hot paths, and strftime parses its pattern
    // on every call (it was the largest single cost of a 500-position evaluation).
    Ok(format!(
        "{:<6}{:02}{:02}{:02}{}{:08}",
        o.underlying,
        o.expiry.year() % 100,
        o.expiry.month(),
        o.expiry.day(),
        r,
        raw / per_milli
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_padded_and_compact() {
        for s in [
            "SPY   250117P00440000",
            "SPY250117P00440000",
            "  SPY   250117P00440000 ",
        ] {
            let o = parse(s).unwrap();
            assert_eq!(o.underlying, "SPY");
            assert_eq!(o.expiry, NaiveDate::from_ymd_opt(2025, 1, 17).unwrap());
            assert_eq!(o.right, Right::Put);
            assert_eq!(o.strike, Price::from_units(440).unwrap());
            assert_eq!(o.multiplier, 100);
            assert_eq!(o.style, ExerciseStyle::American);
            assert_eq!(format(&o).unwrap(), "SPY   250117P00440000");
        }
    }

    #[test]
    fn parses_fractional_strikes_six_char_roots_and_index_roots() {
        let o = parse("SPXW  250321C05912500").unwrap();
        assert_eq!(o.strike, Price::parse("5912.5").unwrap());
        assert_eq!(o.class, OptionClass::BroadIndex);
        assert_eq!(o.style, ExerciseStyle::European);
        let o = parse("BRKB1 251219C00000500").unwrap();
        assert_eq!(o.strike, Price::parse("0.5").unwrap());
        let o = parse("ABCDEF251219C00012345").unwrap();
        assert_eq!(o.underlying, "ABCDEF");
        assert_eq!(o.strike, Price::parse("12.345").unwrap());
        assert_eq!(format(&o).unwrap(), "ABCDEF251219C00012345");
    }

    #[test]
    fn bad_symbols_name_the_bad_part() {
        let cases = [
            ("", "occ.bad_length"),
            // A truncated strike shifts every part; the first part that fails is reported.
            ("SPY250117P0044000", "occ.bad_date"),
            ("SPYSPYS250117P00440000", "occ.bad_length"),
            ("SPYé50117P00440000", "occ.bad_length"),
            ("250117P00440000X", "occ.bad_root"),
            ("spy250117P00440000", "occ.bad_root"),
            ("SP Y  250117P00440000", "occ.bad_root"),
            ("SPY  250117P00440000", "occ.bad_root"),
            ("SPY251317P00440000", "occ.bad_date"),
            ("SPY250230P00440000", "occ.bad_date"),
            ("SPY25O117P00440000", "occ.bad_date"),
            ("SPY250117X00440000", "occ.bad_right"),
            ("SPY250117p00440000", "occ.bad_right"),
            ("SPY250117P0044000A", "occ.bad_strike"),
            ("SPY250117P00000000", "occ.bad_strike"),
            ("SPY250117P-0440000", "occ.bad_strike"),
        ];
        for (s, code) in cases {
            let e = parse(s).unwrap_err();
            assert_eq!(e.code(), code, "{s:?}: {e}");
        }
        match parse("SPY250117X00440000").unwrap_err() {
            OccError::Right { right, symbol } => {
                assert_eq!(right, "X");
                assert_eq!(symbol, "SPY250117X00440000");
            }
            e => panic!("unexpected {e:?}"),
        }
        match parse("SPY250117P0044000A").unwrap_err() {
            OccError::Strike { strike, .. } => assert_eq!(strike, "0044000A"),
            e => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn format_rejects_unrepresentable_contracts() {
        let mut o = parse("SPY250117P00440000").unwrap();
        o.strike = Price::from_raw(4_400_005);
        assert_eq!(format(&o).unwrap_err().code(), "occ.bad_strike");
        o.strike = Price::from_units(100_000).unwrap();
        assert_eq!(format(&o).unwrap_err().code(), "occ.bad_strike");
        o.strike = Price::from_units(1).unwrap();
        o.underlying = "TOOLONG".into();
        assert_eq!(format(&o).unwrap_err().code(), "occ.bad_root");
    }
}
