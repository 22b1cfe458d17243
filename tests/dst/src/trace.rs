//! [`Trace`]: the run's event trace — every broker event the venue delivered, every harness
//! action and every observation digest — folded into a stable 64-bit FNV-1a hash (the same
//! seed must give the same hash), with the last lines kept for a failure report.

use std::collections::VecDeque;

/// Lines kept for the failure report.
pub const TAIL: usize = 40;

/// Hash + tail of the trace.
#[derive(Debug, Clone)]
pub struct Trace {
    hash: u64,
    lines: u64,
    tail: VecDeque<String>,
    /// Print every line to stderr as it is traced (`DST_TRACE=1`, for debugging one seed).
    pub echo: bool,
}

impl Default for Trace {
    fn default() -> Self {
        Self {
            hash: 0xcbf2_9ce4_8422_2325,
            lines: 0,
            tail: VecDeque::new(),
            echo: false,
        }
    }
}

impl Trace {
    /// Appends one line.
    pub fn push(&mut self, line: String) {
        for b in line.as_bytes().iter().chain(b"\n") {
            self.hash ^= u64::from(*b);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.lines += 1;
        if self.echo {
            eprintln!("{line}");
        }
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    /// The hash so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Lines so far.
    pub fn len(&self) -> u64 {
        self.lines
    }

    /// Nothing traced yet.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// The last lines, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_content_and_order() {
        let run = |lines: &[&str]| {
            let mut t = Trace::default();
            for l in lines {
                t.push((*l).to_owned());
            }
            t.hash()
        };
        assert_eq!(run(&["a", "b"]), run(&["a", "b"]));
        assert_ne!(run(&["a", "b"]), run(&["b", "a"]));
        assert_ne!(run(&["ab"]), run(&["a", "b"]));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let mut t = Trace::default();
        for i in 0..100 {
            t.push(i.to_string());
        }
        assert_eq!(t.len(), 100);
        assert_eq!(t.tail().len(), TAIL);
        assert_eq!(t.tail().last().map(String::as_str), Some("99"));
    }
}
