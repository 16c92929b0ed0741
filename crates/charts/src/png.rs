//! A chart's SVG rasterised to PNG with resvg and the bundled font only (DejaVu Sans), so that the
//! PNG looks as the SVG does, whatever fonts the machine has. Characters the font has no glyph for
//! (emoji) are left out of the PNG; the SVG keeps them (a browser's fonts draw them).

use anyhow::{Context as _, Result};
use resvg::{tiny_skia, usvg};

/// The bundled font (its license in `assets/`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// Its family name.
const FONT_FAMILY: &str = "DejaVu Sans";

/// Whether the bundled font can draw `c`: not the emoji and pictographs (nor the joiners and variation
/// selectors that build them), which it would draw as empty boxes.
fn drawable(c: char) -> bool {
    !matches!(
        u32::from(c),
        0x200D | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0xFE00..=0xFE0F | 0x1F000..=0x1FFFF | 0xE0000..=0xE007F
    )
}

/// The PNG of an SVG document, at the SVG's own size, on white.
pub fn png(svg: &str) -> Result<Vec<u8>> {
    let svg: String = svg.chars().filter(|c| drawable(*c)).collect();
    let svg = svg.as_str();
    let mut options = usvg::Options {
        font_family: FONT_FAMILY.to_string(),
        ..usvg::Options::default()
    };
    let fonts = options.fontdb_mut();
    fonts.load_font_data(FONT.to_vec());
    fonts.set_sans_serif_family(FONT_FAMILY);
    let tree = usvg::Tree::from_str(svg, &options).context("reading a chart's SVG")?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).context("a chart of no size")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| anyhow::anyhow!("encoding a chart's PNG: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bar, bars};

    #[test]
    fn a_charts_png_is_its_svg_drawn() {
        let chart = bars(
            "b",
            "Who listened most",
            "plays",
            &[
                Bar {
                    label: "Ana".into(),
                    href: None,
                    value: 40.0,
                },
                Bar {
                    label: "Ben 🎧".into(),
                    href: None,
                    value: 12.0,
                },
            ],
            true,
        );
        let png = png(&chart.svg()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let pixmap = tiny_skia::Pixmap::decode_png(&png).unwrap();
        assert_eq!(
            (f64::from(pixmap.width()), f64::from(pixmap.height())),
            chart.size
        );
        // The bars are drawn in the bar colour, and the text in dark ink.
        let pixels: Vec<_> = pixmap
            .pixels()
            .iter()
            .map(|p| (p.red(), p.green(), p.blue()))
            .collect();
        assert!(pixels.contains(&(0x3b, 0x6f, 0xb6)), "a bar");
        assert!(
            pixels.iter().any(|&(r, g, b)| r < 80 && g < 80 && b < 80),
            "text"
        );
        // The emoji the font cannot draw is left out, not drawn as a box: the PNG equals that of the
        // name without it.
        let without = bars(
            "b",
            "Who listened most",
            "plays",
            &[
                Bar {
                    label: "Ana".into(),
                    href: None,
                    value: 40.0,
                },
                Bar {
                    label: "Ben ".into(),
                    href: None,
                    value: 12.0,
                },
            ],
            true,
        );
        assert_eq!(png, super::png(&without.svg()).unwrap());
        assert!(drawable('é') && drawable('Ł') && !drawable('🎧'));
    }
}
