//! Text measured in terminal cells (CJK and emoji count double, combining marks nothing):
//! padding and cutting for the CLI's tables and the console's columns.

use std::borrow::Cow;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// How many terminal cells `s` takes.
pub fn width(s: &str) -> usize {
    s.width()
}

/// `s` cut to at most `max` cells, ending in `…` when something was cut.
pub fn cut(s: &str, max: usize) -> Cow<'_, str> {
    if s.width() <= max {
        return Cow::Borrowed(s);
    }
    if max == 0 {
        return Cow::Borrowed("");
    }
    let (head, _) = head_before_ellipsis(s, max);
    Cow::Owned(format!("{head}…"))
}

/// The longest start of `s` that still leaves room for a `…` within `max` cells, and its
/// width. All of `s` when it fits with room to spare.
pub fn head_before_ellipsis(s: &str, max: usize) -> (&str, usize) {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        let cw = c.width().unwrap_or(0);
        if used + cw + 1 > max {
            return (&s[..i], used);
        }
        used += cw;
    }
    (s, used)
}

/// Pad `s` with spaces to `width` terminal columns, or cut it with an ellipsis when it is
/// wider.
pub fn pad(s: &str, width: usize) -> String {
    let s = cut(s, width);
    let w = s.width();
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

/// A duration for people: `45 s`, `3 m 20 s`, `1 h 41 m`.
pub fn duration_short(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} m {} s", s / 60, s % 60),
        _ => format!("{} h {} m", s / 3600, (s % 3600) / 60),
    }
}

/// Parse a duration such as `30s`, `2m`, `1h`, `1m30s` or `500ms`.
pub fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let bad =
        || format!("{s:?} is not a duration: write a number followed by s, m or h, e.g. 30s or 2m");
    let text = s.trim();
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = std::time::Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => std::time::Duration::from_millis(n),
            "s" => std::time::Duration::from_secs(n),
            "m" => std::time::Duration::from_secs(n.saturating_mul(60)),
            "h" => std::time::Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(part);
    }
    if total.is_zero() {
        return Err(format!(
            "{s:?} is no time at all: give a duration such as 30s"
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        use std::time::Duration;
        assert_eq!(duration_short(Duration::from_secs(45)), "45 s");
        assert_eq!(duration_short(Duration::from_secs(200)), "3 m 20 s");
        assert_eq!(duration_short(Duration::from_secs(6060)), "1 h 41 m");
    }

    #[test]
    fn widths_count_terminal_cells() {
        assert_eq!(width("aws_identity_store"), 18);
        assert_eq!(width("山田 太郎"), 9);
        assert_eq!(cut("aws_identity_store", 18), "aws_identity_store");
        assert_eq!(cut("aws_identity_store", 10), "aws_ident…");
        assert_eq!(cut("山田 太郎", 4), "山…");
        assert_eq!(cut("abc", 0), "");
        assert_eq!(pad("山田", 6), "山田  ");
        assert_eq!(pad("abcdef", 4), "abc…");
        assert_eq!(width(&pad("山田 太郎", 4)), 4);
    }
}
