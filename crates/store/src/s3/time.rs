//! The two timestamp forms S3 uses, to seconds since the epoch (UTC).

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn seconds(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    let ok = (1..=12).contains(&mo)
        && (1..=31).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..=60).contains(&s);
    ok.then(|| days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `2020-12-01T20:43:11.794Z` (listings) to whole seconds; fractions are dropped.
pub(super) fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, mo, da) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let time = time.split('.').next()?;
    let mut t = time.split(':');
    let (h, mi, se) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    seconds(y, mo, da, h, mi, se)
}

/// `Tue, 01 Dec 2026 07:07:58 GMT` (HTTP Last-Modified) to seconds.
pub(super) fn parse_http_date(s: &str) -> Option<i64> {
    let mut w = s.split_whitespace();
    w.next()?; // weekday
    let d = num(w.next()?)?;
    let mo = match w.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let y = num(w.next()?)?;
    let mut t = w.next()?.split(':');
    let (h, mi, se) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    if w.next()? != "GMT" {
        return None;
    }
    seconds(y, mo, d, h, mi, se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_agree_with_date_1() {
        // `date -u -d '2026-12-01 07:07:58' +%s`
        assert_eq!(
            parse_http_date("Tue, 01 Dec 2026 07:07:58 GMT"),
            Some(1_796_108_878)
        );
        assert_eq!(
            parse_iso8601("2026-12-01T07:07:58.794Z"),
            Some(1_796_108_878)
        );
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601("2000-02-29T12:00:00Z"), Some(951_825_600));
        for bad in ["", "2020-13-01T00:00:00Z", "2020-01-01 00:00:00", "x"] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
        assert_eq!(parse_http_date("Tue, 01 Foo 2026 07:07:58 GMT"), None);
    }
}
