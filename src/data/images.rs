//! Folders of images (PNG, JPEG, BMP, GIF, WebP) → a [`Dataset`] of `[c, h, w]` items.
//!
//! Two ways to name the images, as Keras' `image_dataset_from_directory` and torchvision's
//! `ImageFolder` do:
//!
//! - [`ImageSource::Folder`]: one subfolder per class (`DIR/cat/001.png`, `DIR/dog/002.jpg`); the
//!   class names are the subfolder names sorted by their UTF-8 bytes (Python's `sorted()`), label
//!   `i` is the `i`-th name. Subfolders of a class folder are searched too; files directly in `DIR`,
//!   hidden files (`.name`) and files without an image extension are ignored and counted.
//! - [`ImageSource::List`]: a text file of `path,label` lines (or bare `path` lines: unlabeled);
//!   relative paths are relative to the list's folder. Labels that are all whole numbers are
//!   label ids (no class names); otherwise they are class names, sorted and indexed as above.
//!
//! Each image becomes one row:
//!
//! ```text
//! x[c, i, j] = pixel(i, j)[c] / 255          (8-bit images; 16-bit: / 65535)
//! ```
//!
//! laid out channel-major (`[c, h, w]`, what [`crate::model::Cnn`] reads), with the same `u8 / 255`
//! table as the IDX reader, so that MNIST written as PNGs reads back bit for bit. The ids are the
//! paths relative to `DIR` with `/` separators (`cat/001.png`), or the paths as the list writes them.
//!
//! The format is recognized from the file's **content** (its magic bytes), the extension only as
//! a fallback: a JPEG saved as `x.png` is decoded as the JPEG it is. Images are decoded in
//! parallel (rayon); a file that cannot be read or decoded is an error naming it (or, with
//! [`ImageConfig::skip_bad`], skipped and reported in [`ImageReport::skipped`]). Without
//! [`ImageConfig::resize`] every image must have the size of the first one; the error names both
//! files and both sizes. The first error in file order is the one reported, whatever the thread
//! timing.
//!
//! Differences from Keras / torchvision: no shuffling (order is class, then path: shuffle with a
//! split), no cropping to the aspect ratio, and the gray conversion of a color image
//! ([`Channels::Gray`]) uses the `image` crate's Rec. 709 weights (0.2126 R + 0.7152 G + 0.0722 B),
//! where Pillow's `convert("L")` uses Rec. 601 (0.299, 0.587, 0.114): a few levels apart. Resizing
//! works on the decoded 8- or 16-bit pixels (rounded), as Pillow's does.

use super::{index_class_names, read_file, DataError, Dataset};
use crate::io::Location;
use image::{ColorType, DynamicImage, ImageFormat, ImageReader};
use ndarray::Array2;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The extensions (lower case) taken as images in a class folder.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "jfif"];

/// Where the images and their labels come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource<'a> {
    /// One subfolder per class.
    Folder(&'a Path),
    /// A text file of `path,label` (or `path`) lines.
    List(&'a Path),
}

/// The channels of the items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Channels {
    /// 1 when every image is grayscale, else 3 (gray images replicated into R, G, B; alpha dropped).
    #[default]
    Auto,
    /// 1: color images converted to luma (Rec. 709 weights).
    Gray,
    /// 3: R, G, B (gray replicated, alpha dropped).
    Rgb,
    /// 4: R, G, B, A (opaque images get A = 1).
    Rgba,
}

/// The resampling filter of [`ImageConfig::resize`] (the `image` crate's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResizeFilter {
    /// Nearest neighbor.
    Nearest,
    /// Linear (bilinear in 2-D), Keras' and torchvision's default.
    #[default]
    Triangle,
    /// Catmull-Rom cubic.
    CatmullRom,
    /// Lanczos with window 3.
    Lanczos3,
}

impl ResizeFilter {
    fn filter(self) -> image::imageops::FilterType {
        use image::imageops::FilterType;
        match self {
            ResizeFilter::Nearest => FilterType::Nearest,
            ResizeFilter::Triangle => FilterType::Triangle,
            ResizeFilter::CatmullRom => FilterType::CatmullRom,
            ResizeFilter::Lanczos3 => FilterType::Lanczos3,
        }
    }
}

/// Options of [`read_images`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageConfig {
    /// The channels of the items. Default [`Channels::Auto`].
    pub channels: Channels,
    /// Resize every image to `(width, height)` first. Default `None`: every image must have the
    /// first image's size.
    pub resize: Option<(u32, u32)>,
    /// The filter of `resize`. Default [`ResizeFilter::Triangle`] (bilinear).
    pub filter: ResizeFilter,
    /// Skip images that cannot be read or decoded (listed in [`ImageReport::skipped`]) instead of
    /// failing. Default false.
    pub skip_bad: bool,
}

impl ImageConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`DataError::Dataset`] for a resize to a zero width or height.
    pub fn validate(&self) -> Result<(), DataError> {
        match self.resize {
            Some((w, h)) if w == 0 || h == 0 => {
                Err(DataError::Dataset(format!("resize to {w}x{h}: the width and height must be at least 1")))
            }
            _ => Ok(()),
        }
    }
}

/// What [`read_images`] left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageReport {
    /// Images that could not be read or decoded, with the reason ([`ImageConfig::skip_bad`]).
    pub skipped: Vec<(PathBuf, String)>,
    /// Files of a folder that are not taken: without an image extension, hidden, or directly in
    /// the folder rather than in a class subfolder.
    pub ignored: Vec<PathBuf>,
    /// Class folders without any image (their label ids are kept, no row has them).
    pub empty_classes: Vec<String>,
}

/// One image to read: its file, its id, its label.
struct Entry {
    path: PathBuf,
    id: String,
    label: Option<u32>,
}

/// A decoded image: size, channels and its values, channel-major.
struct Decoded {
    width: u32,
    height: u32,
    channels: usize,
    values: Vec<f32>,
}

/// Reads a folder or a list of images into a dataset (see the [module doc](self)).
///
/// `progress(done, total)` is called as images are decoded (from the worker threads, in no
/// particular order of `done`).
///
/// # Errors
/// [`DataError`] naming the file: a folder or list that cannot be read, a folder with no image, a
/// list line without a path or with an empty label, an image that cannot be read or decoded
/// (unless `skip_bad`), images of different sizes without `resize` (both files and sizes named),
/// a path that is not UTF-8 (ids are strings), an invalid config.
///
/// # Example
/// ```no_run
/// use nsl::data::{read_images, ImageConfig, ImageSource};
/// use std::path::Path;
/// let (digits, report) =
///     read_images(ImageSource::Folder(Path::new("digits/")), &ImageConfig::default(), &|_, _| {})?;
/// assert_eq!(digits.item_shape(), [1, 28, 28]);
/// assert!(report.skipped.is_empty());
/// # Ok::<(), nsl::DataError>(())
/// ```
pub fn read_images(
    source: ImageSource<'_>,
    config: &ImageConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(Dataset, ImageReport), DataError> {
    config.validate()?;
    let mut report = ImageReport::default();
    let (entries, class_names) = match source {
        ImageSource::Folder(dir) => list_folder(dir, &mut report)?,
        ImageSource::List(list) => read_list(list)?,
    };
    let origin = match source {
        ImageSource::Folder(p) | ImageSource::List(p) => p,
    };
    if entries.is_empty() {
        let what = match source {
            ImageSource::Folder(_) => format!(
                "no images found (looked for files ending in .{} inside one subfolder per class)",
                IMAGE_EXTENSIONS.join(", .")
            ),
            ImageSource::List(_) => "the list names no images".to_string(),
        };
        return Err(DataError::invalid(origin, Location::File, what));
    }
    let decoded = decode_all(&entries, config, progress);
    // Keep the images that decoded; the first failure in file order is the error (or skipped).
    let mut kept: Vec<(&Entry, Decoded)> = Vec::with_capacity(entries.len());
    for (entry, result) in entries.iter().zip(decoded) {
        match result {
            Some(Ok(image)) => kept.push((entry, image)),
            Some(Err(message)) if config.skip_bad => report.skipped.push((entry.path.clone(), message)),
            Some(Err(message)) => return Err(DataError::invalid(&entry.path, Location::File, message)),
            // Not decoded because an earlier file failed: that failure was returned above.
            None => unreachable_after_error(&entry.path)?,
        }
    }
    if kept.is_empty() {
        return Err(DataError::invalid(
            origin,
            Location::File,
            format!("none of the {} images could be decoded (all skipped)", entries.len()),
        ));
    }
    assemble(kept, class_names, config.channels).map(|dataset| (dataset, report))
}

/// An image left undecoded while no earlier one failed cannot happen ([`decode_all`] skips only
/// images after a failure); reported as an error rather than a panic all the same.
fn unreachable_after_error(path: &Path) -> Result<(), DataError> {
    Err(DataError::invalid(path, Location::File, "internal error: image not decoded"))
}

/// Decodes every entry in parallel. An entry after the first failure (in file order, when not
/// skipping bad images) is not decoded (`None`): the work stops early, and the failure reported is
/// the first in file order whatever the thread timing.
fn decode_all(
    entries: &[Entry],
    config: &ImageConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Option<Result<Decoded, String>>> {
    let total = entries.len();
    let done = AtomicUsize::new(0);
    let first_error = AtomicUsize::new(usize::MAX);
    entries
        .par_iter()
        .enumerate()
        .map(|(i, entry)| {
            if i > first_error.load(Ordering::Relaxed) {
                return None;
            }
            let result = decode(&entry.path, config);
            if result.is_err() && !config.skip_bad {
                first_error.fetch_min(i, Ordering::Relaxed);
            }
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            Some(result)
        })
        .collect()
}

/// Reads and decodes one image, resized and converted to the channels asked for (`Auto`: its own,
/// 1 or 3).
fn decode(path: &Path, config: &ImageConfig) -> Result<Decoded, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the image: {e}"))?;
    let mut reader = ImageReader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| format!("cannot read the image: {e}"))?;
    if reader.format().is_none() {
        // No known magic bytes: try the format the extension names (its decoder's message is
        // more useful than "unknown format").
        match ImageFormat::from_path(path) {
            Ok(format) => reader.set_format(format),
            Err(_) => {
                return Err(format!(
                    "not an image nsl can decode (PNG, JPEG, BMP, GIF, WebP): it starts with the bytes {:02x?}",
                    &bytes[..bytes.len().min(8)]
                ))
            }
        }
    }
    let format = reader.format().map_or("image", |f| f.extensions_str().first().copied().unwrap_or("image"));
    let mut image = reader.decode().map_err(|e| format!("cannot decode as {}: {e}", format.to_uppercase()))?;
    if let Some((w, h)) = config.resize {
        if (image.width(), image.height()) != (w, h) {
            image = image.resize_exact(w, h, config.filter.filter());
        }
    }
    let channels = match config.channels {
        Channels::Auto if image.color().has_color() => 3,
        Channels::Auto | Channels::Gray => 1,
        Channels::Rgb => 3,
        Channels::Rgba => 4,
    };
    Ok(Decoded { width: image.width(), height: image.height(), channels, values: to_chw(&image, channels) })
}

/// The image's values in `[0, 1]`, channel-major, with `channels` channels (1, 3 or 4).
fn to_chw(image: &DynamicImage, channels: usize) -> Vec<f32> {
    let eight_bit = matches!(image.color(), ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8);
    let interleaved: Vec<f32> = if eight_bit {
        // The IDX reader's table (`v as f32 / 255.0`): the same bits for the same bytes.
        let table: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
        let raw = match channels {
            1 => image.to_luma8().into_raw(),
            3 => image.to_rgb8().into_raw(),
            _ => image.to_rgba8().into_raw(),
        };
        raw.iter().map(|&b| table[b as usize]).collect()
    } else {
        match channels {
            1 => image.to_luma32f().into_raw(),
            3 => image.to_rgb32f().into_raw(),
            _ => image.to_rgba32f().into_raw(),
        }
    };
    if channels == 1 {
        return interleaved;
    }
    // Pixel-major (h, w, c) → channel-major (c, h, w).
    let pixels = interleaved.len() / channels;
    let mut out = vec![0.0f32; interleaved.len()];
    for (p, pixel) in interleaved.chunks_exact(channels).enumerate() {
        for (c, &v) in pixel.iter().enumerate() {
            out[c * pixels + p] = v;
        }
    }
    out
}

/// Builds the dataset from the decoded images: one size (checked), one channel count (`Auto`:
/// gray images replicated to 3 channels when any image has color).
fn assemble(
    kept: Vec<(&Entry, Decoded)>,
    class_names: Option<Vec<String>>,
    mode: Channels,
) -> Result<Dataset, DataError> {
    let (first, image0) = &kept[0];
    let (width, height) = (image0.width, image0.height);
    if let Some((entry, image)) = kept.iter().find(|(_, image)| (image.width, image.height) != (width, height)) {
        return Err(DataError::invalid(
            &entry.path,
            Location::File,
            format!(
                "image is {}x{} but {} is {width}x{height} (width x height): give a size to resize every image to \
                 (`--resize WxH`, library: `ImageConfig::resize`)",
                image.width,
                image.height,
                first.path.display()
            ),
        ));
    }
    let channels = match mode {
        Channels::Auto => kept.iter().map(|(_, image)| image.channels).max().unwrap_or(1),
        _ => kept[0].1.channels,
    };
    let plane = width as usize * height as usize;
    let d = channels * plane;
    let n = kept.len();
    let mut values = Vec::with_capacity(n * d);
    let mut ids = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for (entry, image) in kept {
        if image.channels == channels {
            values.extend_from_slice(&image.values);
        } else {
            // A gray image among color ones (`Auto`): its plane in every channel.
            for _ in 0..channels {
                values.extend_from_slice(&image.values);
            }
        }
        ids.push(entry.id.clone());
        labels.extend(entry.label);
    }
    let labels = (labels.len() == n).then_some(labels);
    let features = Array2::from_shape_vec((n, d), values).map_err(|e| DataError::Dataset(e.to_string()))?;
    Dataset::new(ids, features, vec![channels, height as usize, width as usize], labels, class_names)
}

/// Whether `name` has one of [`IMAGE_EXTENSIONS`] (any case).
fn has_image_extension(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| IMAGE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

/// The UTF-8 name of a directory entry (ids and class names are strings).
fn utf8_name(path: &Path) -> Result<String, DataError> {
    path.file_name().and_then(|n| n.to_str()).map(str::to_owned).ok_or_else(|| {
        DataError::invalid(path, Location::File, "the file name is not valid UTF-8 (ids and class names are text)")
    })
}

/// The entries of a directory, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let read = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut paths = Vec::new();
    for entry in read {
        paths.push(entry.map_err(|e| DataError::io(dir, e))?.path());
    }
    paths.sort();
    Ok(paths)
}

/// The images of a class folder, recursively (symbolic links to folders are not followed, so a
/// link loop cannot trap the walk), as `(path, id)` with `prefix` the id of `dir`.
fn walk_class(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(PathBuf, String)>,
    report: &mut ImageReport,
) -> Result<(), DataError> {
    for path in sorted_entries(dir)? {
        let name = utf8_name(&path)?;
        let id = format!("{prefix}/{name}");
        let link = std::fs::symlink_metadata(&path).map_err(|e| DataError::io(&path, e))?;
        if link.is_dir() {
            walk_class(&path, &id, out, report)?;
        } else if name.starts_with('.')
            || !has_image_extension(&name)
            || (link.file_type().is_symlink() && path.is_dir())
        {
            report.ignored.push(path);
        } else {
            out.push((path, id));
        }
    }
    Ok(())
}

/// The images of a folder with one subfolder per class.
fn list_folder(dir: &Path, report: &mut ImageReport) -> Result<(Vec<Entry>, Option<Vec<String>>), DataError> {
    let meta = std::fs::metadata(dir).map_err(|e| DataError::io(dir, e))?;
    if !meta.is_dir() {
        return Err(DataError::invalid(
            dir,
            Location::File,
            "not a folder (expected one subfolder of images per class; a list of `path,label` lines is read with \
             `--image-list`)",
        ));
    }
    let mut class_names = Vec::new();
    let mut entries = Vec::new();
    for path in sorted_entries(dir)? {
        let name = utf8_name(&path)?;
        if !path.is_dir() || name.starts_with('.') {
            report.ignored.push(path);
            continue;
        }
        let label = class_names.len() as u32;
        let mut files = Vec::new();
        walk_class(&path, &name, &mut files, report)?;
        if files.is_empty() {
            report.empty_classes.push(name.clone());
        }
        entries.extend(files.into_iter().map(|(path, id)| Entry { path, id, label: Some(label) }));
        class_names.push(name);
    }
    Ok((entries, Some(class_names)))
}

/// The images of a `path,label` list.
fn read_list(list: &Path) -> Result<(Vec<Entry>, Option<Vec<String>>), DataError> {
    let bytes = read_file(list)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| DataError::invalid(list, Location::Byte(e.valid_up_to() as u64), "the list is not UTF-8 text"))?;
    let base = list.parent().unwrap_or(Path::new(""));
    let mut rows: Vec<(usize, &str, Option<&str>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The label follows the last comma, so paths may hold commas.
        let (path, label) = match line.rsplit_once(',') {
            Some((path, label)) => (path.trim(), Some(label.trim())),
            None => (line, None),
        };
        if rows.is_empty()
            && path.eq_ignore_ascii_case("path")
            && label.is_some_and(|l| l.eq_ignore_ascii_case("label"))
        {
            continue; // a header line
        }
        if path.is_empty() {
            return Err(DataError::invalid(list, Location::Line(i + 1), "no path before the comma"));
        }
        if label == Some("") {
            return Err(DataError::invalid(list, Location::Line(i + 1), format!("`{path}`: empty label")));
        }
        if let Some(&(first, _, first_label)) = rows.first() {
            if first_label.is_some() != label.is_some() {
                return Err(DataError::invalid(
                    list,
                    Location::Line(i + 1),
                    format!(
                        "line {first} {} a label but this one {}: give every path a label, or none",
                        if first_label.is_some() { "has" } else { "has no" },
                        if label.is_some() { "has" } else { "has none" }
                    ),
                ));
            }
        }
        rows.push((i + 1, path, label));
    }
    let labels: Option<Vec<&str>> = rows.iter().map(|&(_, _, label)| label).collect();
    let (labels, class_names) = match labels {
        Some(labels) if labels.iter().all(|l| l.parse::<u32>().is_ok()) => {
            (labels.iter().filter_map(|l| l.parse::<u32>().ok()).map(Some).collect::<Vec<_>>(), None)
        }
        Some(labels) => {
            let (names, indices) = index_class_names(&labels);
            (indices.into_iter().map(Some).collect(), Some(names))
        }
        None => (vec![None; rows.len()], None),
    };
    let entries = rows
        .iter()
        .zip(labels)
        .map(|(&(_, path, _), label)| Entry { path: base.join(path), id: path.to_string(), label })
        .collect();
    Ok((entries, class_names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_any_case() {
        assert!(has_image_extension("a.PNG"));
        assert!(has_image_extension("a.b.jpeg"));
        assert!(!has_image_extension("png"));
        assert!(!has_image_extension("notes.txt"));
    }

    #[test]
    fn rgb_becomes_channel_major() {
        // A 2x1 RGB image: pixels (255, 0, 51) and (0, 255, 102).
        let image = image::RgbImage::from_raw(2, 1, vec![255, 0, 51, 0, 255, 102]).unwrap();
        let values = to_chw(&DynamicImage::ImageRgb8(image), 3);
        assert_eq!(values, vec![1.0, 0.0, 0.0, 1.0, 0.2, 0.4]);
    }

    #[test]
    fn sixteen_bit_gray_scales_by_65535() {
        let image = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(2, 1, vec![65535u16, 0]).unwrap();
        assert_eq!(to_chw(&DynamicImage::ImageLuma16(image), 1), vec![1.0, 0.0]);
    }
}
