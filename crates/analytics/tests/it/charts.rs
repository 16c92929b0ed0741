//! Every chart renders from the fixture group's report: a valid PNG of the expected size with content
//! on it, and an SVG that names the members, drawn by the dashboard's chart model (the same bar colour
//! and palette in the PNG as on the pages).

use analytics::charts::{SIZE, charts};
use earshot_tests::exported_snapshot;

#[tokio::test]
async fn every_chart_is_a_readable_png_and_svg() {
    let (_db, _dir, storage) = exported_snapshot("analytics_charts", "c1").await;
    let out = crate::analyse_fixture_group(&storage).await;
    let report = out.report.clone();
    let drawn = tokio::task::spawn_blocking(move || {
        charts()
            .iter()
            .map(|c| (c.name, c.png(&report).unwrap(), c.svg(&report).unwrap()))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let names: Vec<&str> = drawn.iter().map(|d| d.0).collect();
    assert_eq!(
        names,
        [
            "top_artists",
            "listening_clock",
            "taste_match",
            "plays_per_day"
        ]
    );
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("analytics-charts");
    std::fs::create_dir_all(&artifacts).unwrap();
    for (name, png, svg) in drawn {
        std::fs::write(artifacts.join(format!("{name}.png")), &png).unwrap();
        std::fs::write(artifacts.join(format!("{name}.svg")), &svg).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}: PNG signature");
        let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .unwrap()
            .to_rgb8();
        assert_eq!(image.dimensions(), SIZE, "{name}");
        let inked = image.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        let share = inked as f64 / f64::from(SIZE.0 * SIZE.1);
        assert!(
            share > 0.02,
            "{name}: only {:.1}% of the pixels carry anything",
            share * 100.0
        );
        let colours: std::collections::HashSet<[u8; 3]> = image.pixels().map(|p| p.0).collect();
        assert!(colours.len() > 8, "{name}: {} colours", colours.len());
        // One palette: bars and days in the dashboard's bar colour, heatmaps from its ramp's dark end.
        let ink = match name {
            "top_artists" | "plays_per_day" => Some([0x3b, 0x6f, 0xb6]),
            _ => None,
        };
        if let Some(ink) = ink {
            assert!(colours.contains(&ink), "{name}: the bar colour");
            assert!(svg.contains(earshot_charts::BAR_COLOUR), "{name}");
        } else {
            assert!(
                svg.contains(&earshot_charts::colour(1.0)) || svg.contains("linearGradient"),
                "{name}: the ramp"
            );
        }
        assert!(svg.starts_with("<svg"), "{name}");
        for member in ["Ana", "Ben", "Chloé", "Dev"] {
            assert!(
                svg.contains(member),
                "{name}: the SVG does not name {member}"
            );
        }
        match name {
            // A time axis: the months between the March and October plays are ticked, not skipped.
            "plays_per_day" => assert!(
                ["May 2024", "Jun 2024", "Jul 2024", "Aug 2024"]
                    .iter()
                    .any(|month| svg.contains(month)),
                "plays per day has no tick between March and October"
            ),
            // The SVG keeps the emoji of a name (the viewer's fonts draw it); the PNG, drawn with the
            // bundled font only, leaves it out.
            "taste_match" | "listening_clock" => {
                assert!(svg.contains("Emi 🎧"), "{name}");
                assert!(
                    svg.contains("taste match") || svg.contains("plays"),
                    "{name}: a scale"
                );
            }
            _ => {}
        }
    }
}
