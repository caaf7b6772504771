//! `/`: the console's home page (`console::home`), with its chart drawn on the server as
//! inline SVG (no script, no external asset).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::console::home::{self, Day, Home};
use crate::state::AppState;
use crate::web::auth::guards::CurrentUser;
use crate::web::ctx::PageCtx;
use crate::web::error::HtmlError;
use crate::web::render;

/// The chart's drawing area, in SVG units (the SVG scales to its box).
const WIDTH: i64 = 600;
const HEIGHT: i64 = 160;
const BAR_GAP: i64 = 4;

/// One stacked bar: success at the bottom, then errors, then pending.
pub struct Bar {
    pub x: i64,
    pub width: i64,
    /// (y, height) of each segment.
    pub success: (i64, i64),
    pub error: (i64, i64),
    pub pending: (i64, i64),
    /// "2026-12-03: 12 successful, 1 failed, 0 pending".
    pub label: String,
    pub day: Day,
}

pub struct Chart {
    pub bars: Vec<Bar>,
    pub max: i64,
    pub width: i64,
    pub height: i64,
    pub first: String,
    pub last: String,
}

/// Scales the days to the drawing area; the tallest day fills it.
pub fn chart(days: &[Day]) -> Chart {
    let max = days.iter().map(Day::total).max().unwrap_or(0).max(1);
    let n = days.len().max(1) as i64;
    let slot = WIDTH / n;
    let scale = |v: i64| (v * HEIGHT + max - 1) / max;
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (hs, he, hp) = (scale(d.success), scale(d.error), scale(d.pending));
            let base = HEIGHT;
            Bar {
                x: i as i64 * slot + BAR_GAP / 2,
                width: slot - BAR_GAP,
                success: (base - hs, hs),
                error: (base - hs - he, he),
                pending: (base - hs - he - hp, hp),
                label: format!(
                    "{}: {} successful, {} failed, {} pending",
                    d.date.map(|x| x.to_string()).unwrap_or_default(),
                    d.success,
                    d.error,
                    d.pending
                ),
                day: d.clone(),
            }
        })
        .collect();
    let date = |d: Option<&Day>| {
        d.and_then(|d| d.date)
            .map(|x| x.format("%-d %b").to_string())
            .unwrap_or_default()
    };
    Chart {
        bars,
        max,
        width: WIDTH,
        height: HEIGHT,
        first: date(days.first()),
        last: date(days.last()),
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: PageCtx,
    h: Home,
    chart: Chart,
    today: Day,
    month: Day,
    rate: String,
}

pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let today = chrono::Utc::now().date_naive();
    let h = state.db.run(move |c| home::home(c, &actor, today)).await?;
    render(
        StatusCode::OK,
        &HomePage {
            ctx: PageCtx::new(&session, &user.0, "home"),
            chart: chart(&h.days),
            today: h.today(),
            month: h.month(),
            rate: h.success_rate().unwrap_or_else(|| "–".into()),
            h,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_from_the_bottom_and_the_tallest_fills_the_height() {
        let days = vec![
            Day {
                date: None,
                success: 2,
                error: 1,
                pending: 1,
            },
            Day::default(),
        ];
        let c = chart(&days);
        assert_eq!(c.max, 4);
        let b = &c.bars[0];
        assert_eq!(b.success, (HEIGHT - 80, 80));
        assert_eq!(b.error, (HEIGHT - 120, 40));
        assert_eq!(b.pending, (0, 40));
        assert_eq!(c.bars[1].success, (HEIGHT, 0));
        assert!(c.bars[1].x > b.x + b.width);
    }
}
