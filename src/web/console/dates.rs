//! Dates as the console shows and reads them: UTC calendar days, no time
//! zone library needed.

/// Seconds in a day.
const DAY: i64 = 86_400;

/// A UTC calendar date from Unix seconds: (year, month 1–12, day 1–31).
/// Howard Hinnant's `civil_from_days`.
pub fn civil_date(unix: i64) -> (i64, u32, u32) {
    let days = unix.div_euclid(DAY) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix seconds of UTC midnight starting `year-month-day`; `None` for a
/// date that does not exist. Hinnant's `days_from_civil`.
pub fn midnight(year: i64, month: u32, day: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some((era * 146_097 + day_of_era - 719_468) * DAY)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DD` (what `<input type="date">` sends) as the Unix seconds of
/// that day's UTC midnight; `None` for anything else.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year = parts.next()?.parse().ok().filter(|year| (1970..=9999).contains(year))?;
    let month = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    midnight(year, month, day)
}

/// "Nov 3": a day as a chart labels it.
pub fn short_date(unix: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (_, month, day) = civil_date(unix);
    format!("{} {day}", MONTHS[(month as usize + 11) % 12])
}

/// `2026-12-01 07:00 UTC`.
pub fn date_time(unix: i64) -> String {
    let (year, month, day) = civil_date(unix);
    let seconds = unix.rem_euclid(DAY);
    format!("{year}-{month:02}-{day:02} {:02}:{:02} UTC", seconds / 3600, seconds % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(civil_date(1_796_083_200 - 1), (2026, 11, 30));
        assert_eq!(civil_date(1_796_083_200), (2026, 12, 1));
        assert_eq!(short_date(1_796_083_200), "Dec 1");
        assert_eq!(date_time(1_796_108_400), "2026-12-01 07:00 UTC");
    }

    #[test]
    fn typed_dates_round_trip_and_nonsense_is_refused() {
        assert_eq!(parse_date("2026-12-01"), Some(1_796_083_200));
        assert_eq!(parse_date("2000-02-29"), Some(951_782_400));
        assert_eq!(parse_date("1970-01-01"), Some(0));
        for bad in ["", "2026-13-01", "2026-02-29", "1900-02-29", "2026-12", "x-1-1", "2026-12-01-02", "2026-00-10"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        for day in (0..20_000).step_by(37) {
            let (year, month, date) = civil_date(day * DAY);
            assert_eq!(midnight(year, month, date), Some(day * DAY));
        }
    }
}
