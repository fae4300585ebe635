//! A PNG grid of images with their adversarial versions and the labels models give them, drawn with
//! a built-in 3×5 pixel font (no font files).

use super::{render_error, write_file, ReportError};
use std::path::Path;

/// One cell of the grid: an image, its adversarial version, and up to a few labelled class numbers
/// shown under them (e.g. `('T', 6, None)` for the truth, `('B', 5, Some(false))` for a wrong
/// prediction drawn in red, `('A', 6, Some(true))` for a right one in green).
#[derive(Debug, Clone)]
pub struct DigitCell {
    /// The original image, `h × w` values in `[0, 1]`.
    pub original: Vec<f32>,
    /// The perturbed image, same size.
    pub adversarial: Vec<f32>,
    /// `(letter, class, correct?)` tags: black when `correct` is `None`, else green or red.
    pub tags: Vec<(char, u32, Option<bool>)>,
}

const SCALE: usize = 3;
const GLYPH: usize = 3; // pixel size of a font dot

/// 3×5 glyphs, rows top to bottom, 3 bits per row (MSB left).
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 2, 2, 2],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'F' => [7, 4, 6, 4, 4],
        'N' => [5, 7, 7, 5, 5],
        'R' => [6, 5, 6, 5, 5],
        'T' => [7, 2, 2, 2, 2],
        _ => [0, 0, 0, 0, 0],
    }
}

struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Canvas { width, height, rgb: vec![255; width * height * 3] }
    }

    fn put(&mut self, x: usize, y: usize, color: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = (y * self.width + x) * 3;
            self.rgb[i..i + 3].copy_from_slice(&color);
        }
    }

    fn image(&mut self, x0: usize, y0: usize, pixels: &[f32], side: usize) {
        for (i, &v) in pixels.iter().enumerate() {
            let shade = 255 - (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            let (px, py) = (i % side, i / side);
            for dy in 0..SCALE {
                for dx in 0..SCALE {
                    self.put(x0 + px * SCALE + dx, y0 + py * SCALE + dy, [shade; 3]);
                }
            }
        }
    }

    fn text(&mut self, x0: usize, y0: usize, text: &str, color: [u8; 3]) {
        for (k, c) in text.chars().enumerate() {
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        for dy in 0..GLYPH {
                            for dx in 0..GLYPH {
                                self.put(x0 + (k * 4 + col) * GLYPH + dx, y0 + row * GLYPH + dy, color);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Writes `cells` as a PNG grid with `columns` cells per row; each image is square with side `side`
/// (e.g. 28). Each cell shows the original (left), the adversarial version (right) and its tags below.
/// The file is written atomically.
///
/// # Errors
/// [`ReportError::Io`] if the file cannot be written, [`ReportError::Render`] if PNG encoding fails.
pub fn digit_grid_png(cells: &[DigitCell], side: usize, columns: usize, path: &Path) -> Result<(), ReportError> {
    let columns = columns.max(1);
    let img = side * SCALE;
    let (cell_w, cell_h) = (2 * img + 3 * 4 + 10, img + 5 * GLYPH + 12);
    let rows = cells.len().div_ceil(columns).max(1);
    let mut canvas = Canvas::new(columns * cell_w + 8, rows * cell_h + 8);
    for (i, cell) in cells.iter().enumerate() {
        let (x0, y0) = (4 + (i % columns) * cell_w, 4 + (i / columns) * cell_h);
        canvas.image(x0 + 4, y0, &cell.original, side);
        canvas.image(x0 + 8 + img, y0, &cell.adversarial, side);
        let mut x = x0 + 4;
        for &(letter, class, correct) in &cell.tags {
            let color = match correct {
                None => [0, 0, 0],
                Some(true) => [0, 140, 0],
                Some(false) => [210, 0, 0],
            };
            canvas.text(x, y0 + img + 5, &format!("{letter}{class}"), color);
            x += (4 * 2 + 2) * GLYPH;
        }
    }
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, canvas.width as u32, canvas.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| render_error(path, e))?;
        writer.write_image_data(&canvas.rgb).map_err(|e| render_error(path, e))?;
    }
    write_file(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_of_the_right_size() {
        let cell = DigitCell {
            original: vec![1.0; 4],
            adversarial: vec![0.5; 4],
            tags: vec![('T', 6, None), ('B', 5, Some(false)), ('A', 6, Some(true))],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.png");
        digit_grid_png(&[cell.clone(), cell.clone(), cell], 2, 2, &path).unwrap();
        let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!((info.width, info.height), (2 * (2 * 6 + 22) + 8, 2 * (6 + 15 + 12) + 8));
    }
}
