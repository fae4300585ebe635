//! Issue 27: folders of images, numpy arrays and CIFAR batches in, numpy arrays out — the values
//! read (hand-computed from small fixtures), and bad input: every error names the file, and
//! nothing is written.

use nsl::data::{
    read_cifar, read_images, read_npy, read_npz, write_npy, write_npz, Channels, CifarOptions, ImageConfig,
    ImageSource, NpyOptions,
};
use std::io::Write;
use std::path::{Path, PathBuf};

mod common;
use common::{fails, ok};

/// A temporary directory with helpers to put fixture files in it.
struct Fixtures(tempfile::TempDir);

impl Fixtures {
    fn new() -> Self {
        Fixtures(tempfile::tempdir().unwrap())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A gray PNG of `width × height` with these bytes.
    fn gray_png(&self, name: &str, width: u32, height: u32, pixels: &[u8]) -> PathBuf {
        self.file(name, encode(image::DynamicImage::ImageLuma8(gray(width, height, pixels)), image::ImageFormat::Png))
    }

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

fn gray(width: u32, height: u32, pixels: &[u8]) -> image::GrayImage {
    image::GrayImage::from_raw(width, height, pixels.to_vec()).unwrap()
}

fn encode(image: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A `.npy` of `descr` and `shape` with these data bytes (format 1.0).
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

fn no_progress(_: usize, _: usize) {}

/// Two classes of gray 3 × 2 digits: `a/one.png`, `a/two.png`, `b/three.png`.
fn digit_folder(fx: &Fixtures) -> PathBuf {
    fx.gray_png("digits/a/one.png", 3, 2, &[0, 51, 255, 102, 0, 0]);
    fx.gray_png("digits/a/two.png", 3, 2, &[1, 2, 3, 4, 5, 6]);
    fx.gray_png("digits/b/three.png", 3, 2, &[255; 6]);
    fx.path("digits")
}

#[test]
fn folder_of_gray_pngs_reads_bytes_over_255() {
    let fx = Fixtures::new();
    let dir = digit_folder(&fx);
    fx.file("digits/README.txt", "not an image");
    let (d, report) = read_images(ImageSource::Folder(&dir), &ImageConfig::default(), &no_progress).unwrap();
    assert_eq!(d.ids(), ["a/one.png", "a/two.png", "b/three.png"]);
    assert_eq!(d.item_shape(), [1, 2, 3]);
    assert_eq!(d.labels().unwrap(), [0, 0, 1]);
    assert_eq!(d.class_names().unwrap(), ["a", "b"]);
    assert_eq!(d.row(0).to_vec(), [0.0, 0.2, 1.0, 0.4, 0.0, 0.0]);
    assert_eq!(d.row(1)[5], 6.0 / 255.0);
    assert_eq!(report.ignored.len(), 1);
}

#[test]
fn color_images_are_channel_major_and_gray_ones_replicated() {
    let fx = Fixtures::new();
    let rgb = image::RgbImage::from_raw(2, 1, vec![255, 0, 51, 0, 255, 102]).unwrap();
    fx.file("c/x/rgb.png", encode(image::DynamicImage::ImageRgb8(rgb), image::ImageFormat::Png));
    fx.gray_png("c/y/gray.png", 2, 1, &[51, 102]);
    let (d, _) = read_images(ImageSource::Folder(&fx.path("c")), &ImageConfig::default(), &no_progress).unwrap();
    assert_eq!(d.item_shape(), [3, 1, 2]);
    assert_eq!(d.row(0).to_vec(), [1.0, 0.0, 0.0, 1.0, 0.2, 0.4]);
    assert_eq!(d.row(1).to_vec(), [0.2, 0.4, 0.2, 0.4, 0.2, 0.4]);
    let gray = ImageConfig { channels: Channels::Gray, ..ImageConfig::default() };
    let (d, _) = read_images(ImageSource::Folder(&fx.path("c")), &gray, &no_progress).unwrap();
    assert_eq!(d.item_shape(), [1, 1, 2]);
    // Rec. 709: 0.2126 · 255 + 0.0722 · 51 = 57.9 → 58 (rounded); Rec. 601 would give 0.299 · 255 +
    // 0.114 · 51 = 82.1.
    assert_eq!(d.row(0)[0], 58.0 / 255.0);
}

#[test]
fn image_list_with_class_names_and_relative_paths() {
    let fx = Fixtures::new();
    digit_folder(&fx);
    let list = fx.file("list.csv", "path,label\ndigits/b/three.png,zebra\n# a comment\ndigits/a/one.png,ant\n");
    let (d, _) = read_images(ImageSource::List(&list), &ImageConfig::default(), &no_progress).unwrap();
    assert_eq!(d.ids(), ["digits/b/three.png", "digits/a/one.png"]);
    assert_eq!(d.class_names().unwrap(), ["ant", "zebra"]);
    assert_eq!(d.labels().unwrap(), [1, 0]);
}

#[test]
fn resize_makes_mixed_sizes_one() {
    let fx = Fixtures::new();
    fx.gray_png("m/a/big.png", 4, 4, &[200; 16]);
    fx.gray_png("m/a/small.png", 2, 2, &[100; 4]);
    let config = ImageConfig { resize: Some((2, 2)), ..ImageConfig::default() };
    let (d, _) = read_images(ImageSource::Folder(&fx.path("m")), &config, &no_progress).unwrap();
    assert_eq!(d.item_shape(), [1, 2, 2]);
    // A flat image stays flat; the small one is not resampled.
    assert_eq!(d.row(0).to_vec(), [200.0 / 255.0; 4]);
    assert_eq!(d.row(1).to_vec(), [100.0 / 255.0; 4]);
}

#[test]
fn jpeg_with_png_extension_is_decoded_by_content() {
    let fx = Fixtures::new();
    let jpeg = encode(image::DynamicImage::ImageLuma8(gray(8, 8, &[128; 64])), image::ImageFormat::Jpeg);
    fx.file("j/a/photo.jpg", &jpeg);
    fx.file("j/b/photo.png", &jpeg);
    let (d, _) = read_images(ImageSource::Folder(&fx.path("j")), &ImageConfig::default(), &no_progress).unwrap();
    assert_eq!(d.row(0), d.row(1));
}

#[test]
fn truncated_png_names_the_file_and_writes_nothing() {
    let fx = Fixtures::new();
    digit_folder(&fx);
    let png = encode(image::DynamicImage::ImageLuma8(gray(16, 16, &[7; 256])), image::ImageFormat::Png);
    fx.file("digits/b/cut.png", &png[..png.len() / 2]);
    let out = fx.s("out.parquet");
    let err = fails(&["convert", "--images", &fx.s("digits"), "--samples", &out]);
    assert!(err.contains("cut.png") && err.contains("cannot decode as PNG"), "{err}");
    assert!(!Path::new(&out).exists());
    // --skip-bad: skipped and counted.
    let stdout = ok(&["convert", "--images", &fx.s("digits"), "--skip-bad", "--samples", &out, "--json"]);
    assert!(stdout.contains("\"rows\": 3"), "{stdout}");
}

#[test]
fn folder_without_images_is_an_error_naming_it() {
    let fx = Fixtures::new();
    fx.file("empty/cats/notes.txt", "no images here");
    let out = fx.s("out.parquet");
    let err = fails(&["convert", "--images", &fx.s("empty"), "--samples", &out]);
    assert!(err.contains("empty") && err.contains("no images found"), "{err}");
    assert!(!Path::new(&out).exists());
}

#[test]
fn mixed_sizes_name_both_files_and_sizes() {
    let fx = Fixtures::new();
    fx.gray_png("m/a/first.png", 3, 2, &[0; 6]);
    fx.gray_png("m/b/second.png", 2, 2, &[0; 4]);
    let out = fx.s("out.parquet");
    let err = fails(&["convert", "--images", &fx.s("m"), "--samples", &out]);
    assert!(
        err.contains("second.png") && err.contains("2x2") && err.contains("first.png") && err.contains("3x2"),
        "{err}"
    );
    assert!(!Path::new(&out).exists());
    ok(&["convert", "--images", &fx.s("m"), "--resize", "2x2", "--resize-filter", "nearest", "--samples", &out]);
}

#[test]
fn npy_features_and_labels() {
    let fx = Fixtures::new();
    let x = fx.file("x.npy", npy("|u1", "(2, 1, 2)", &[0, 255, 51, 102]));
    let y = fx.file("y.npy", npy("<i8", "(2,)", &[3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]));
    let d = read_npy(&x, Some(&y), &NpyOptions::default()).unwrap();
    assert_eq!(d.item_shape(), [1, 1, 2]);
    assert_eq!(d.row(1).to_vec(), [0.2, 0.4]);
    assert_eq!(d.labels().unwrap(), [3, 1]);
}

#[test]
fn npy_wrong_dtype_or_shape_names_the_file_and_writes_nothing() {
    let fx = Fixtures::new();
    let x = fx.file("ints.npy", npy("<i4", "(2,)", &[0; 8]));
    let out = fx.s("out.parquet");
    let err = fails(&["convert", "--npy", &fx.s("ints.npy"), "--samples", &out]);
    assert!(err.contains("ints.npy") && err.contains("float32, float64 or uint8, found int32"), "{err}");
    let good = fx.file("x.npy", npy("<f4", "(2,)", &[0; 8]));
    fx.file("y2d.npy", npy("<i8", "(2, 2)", &[0; 32]));
    let err = fails(&["convert", "--npy", &fx.s("x.npy"), "--labels", &fx.s("y2d.npy"), "--samples", &out]);
    assert!(err.contains("y2d.npy") && err.contains("labels must be 1-D"), "{err}");
    fx.file("yf.npy", npy("<f4", "(2,)", &[0; 8]));
    let err = fails(&["convert", "--npy", &fx.s("x.npy"), "--labels", &fx.s("yf.npy"), "--samples", &out]);
    assert!(err.contains("yf.npy") && err.contains("labels must be integers, found float32"), "{err}");
    fx.file("short.npy", npy("<f4", "(3,)", &[0; 8]));
    let err = fails(&["convert", "--npy", &fx.s("short.npy"), "--samples", &out]);
    assert!(err.contains("short.npy") && err.contains("truncated"), "{err}");
    assert!(!Path::new(&out).exists());
    let _ = (x, good);
}

#[test]
fn npz_round_trip_keeps_ids_labels_and_bits() {
    let fx = Fixtures::new();
    let dir = digit_folder(&fx);
    let (d, _) = read_images(ImageSource::Folder(&dir), &ImageConfig::default(), &no_progress).unwrap();
    let npz = fx.path("d.npz");
    write_npz(&d, &npz).unwrap();
    let back = read_npz(&npz, None, None, &NpyOptions::default()).unwrap();
    assert_eq!(back.ids(), d.ids());
    assert_eq!(back.labels(), d.labels());
    assert_eq!(back.item_shape(), d.item_shape());
    assert_eq!(back.features(), d.features());
    let x = fx.path("d.npy");
    write_npy(&d, &x).unwrap();
    let back = read_npy(&x, None, &NpyOptions::default()).unwrap();
    assert_eq!(back.features(), d.features());
    assert_eq!(back.ids(), ["0", "1", "2"]);
}

#[test]
fn deflated_npz_member_by_key() {
    let fx = Fixtures::new();
    let path = fx.path("c.npz");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("x_train.npy", options).unwrap();
    zip.write_all(&npy("<f8", "(2, 1)", &[0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40])).unwrap();
    zip.start_file("y_train.npy", options).unwrap();
    zip.write_all(&npy("|u1", "(2,)", &[4, 2])).unwrap();
    zip.finish().unwrap();
    let d = read_npz(&path, Some("x_train"), Some("y_train"), &NpyOptions::default()).unwrap();
    assert_eq!(d.features().column(0).to_vec(), [1.0, 2.0]);
    assert_eq!(d.labels().unwrap(), [4, 2]);
    let err = read_npz(&path, None, None, &NpyOptions::default()).unwrap_err().to_string();
    assert!(err.contains("c.npz") && err.contains("x_train, y_train"), "{err}");
}

#[test]
fn cifar10_records_and_a_wrong_length() {
    let fx = Fixtures::new();
    let mut bytes = Vec::new();
    for (label, value) in [(7u8, 51u8), (2, 255)] {
        bytes.push(label);
        bytes.extend(std::iter::repeat_n(value, 3072));
    }
    let batch = fx.file("data_batch_1.bin", &bytes);
    fx.file("batches.meta.txt", "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
    let d = read_cifar(std::slice::from_ref(&batch), &CifarOptions::default()).unwrap();
    assert_eq!(d.item_shape(), [3, 32, 32]);
    assert_eq!(d.labels().unwrap(), [7, 2]);
    assert_eq!(d.class_names().unwrap()[7], "horse");
    assert_eq!(d.ids(), ["data_batch_1/0", "data_batch_1/1"]);
    assert_eq!(d.row(0)[3071], 0.2);
    fx.file("cut.bin", &bytes[..3073 + 100]);
    let out = fx.s("out.parquet");
    let err = fails(&["convert", "--cifar", &fx.s("cut.bin"), "--samples", &out]);
    assert!(err.contains("cut.bin") && err.contains("3173 bytes are not a whole number"), "{err}");
    assert!(!Path::new(&out).exists());
}

#[test]
fn samples_readers_take_npz_and_cifar() {
    // `nsl convert --parquet`-free path: `read_samples` (every command's reader) sniffs them.
    let fx = Fixtures::new();
    let dir = digit_folder(&fx);
    let (d, _) = read_images(ImageSource::Folder(&dir), &ImageConfig::default(), &no_progress).unwrap();
    let npz = fx.path("d.npz");
    write_npz(&d, &npz).unwrap();
    let back = nsl::data::read_samples(&npz, &nsl::data::SampleColumns::default()).unwrap();
    assert_eq!(back.labels(), d.labels());
    assert_eq!(back.features(), d.features());
}

#[test]
fn embed_writes_a_hidden_layer_that_build_graph_reads() {
    let fx = Fixtures::new();
    let mut csv = String::from("id,a,b,c,label\n");
    for i in 0..12 {
        let (x, label) = (i as f32 / 12.0, i % 2);
        csv += &format!("s{i},{x},{},{},{label}\n", 1.0 - x, label as f32);
    }
    fx.file("train.csv", csv);
    let run = fx.s("run");
    ok(&["train", "--samples", &fx.s("train.csv"), "--model", "mlp:5", "--epochs", "2", "--out", &run]);
    let out = fx.s("emb.parquet");
    ok(&["embed", "--run", &run, "--samples", &fx.s("train.csv"), "--layer", "hidden0", "--output", &out]);
    let emb = nsl::data::read_parquet_samples(Path::new(&out), &nsl::data::SampleColumns::default()).unwrap();
    assert_eq!(emb.len(), 12);
    assert_eq!(emb.dim(), 5);
    assert_eq!(emb.ids()[3], "s3");
    assert_eq!(emb.labels().unwrap()[3], 1);
    assert!(emb.features().iter().all(|&v| v >= 0.0), "hidden0 is after the ReLU");
    // The logits by default: one value per class.
    let logits = fx.s("logits.parquet");
    ok(&["embed", "--run", &run, "--samples", &fx.s("train.csv"), "--output", &logits]);
    let l = nsl::data::read_parquet_samples(Path::new(&logits), &nsl::data::SampleColumns::default()).unwrap();
    assert_eq!(l.dim(), 2);
    ok(&["build-graph", "--input", &out, "--threshold", "0.5", "--output", &fx.s("g.parquet")]);
    let err = fails(&[
        "embed",
        "--run",
        &run,
        "--samples",
        &fx.s("train.csv"),
        "--layer",
        "conv9",
        "--output",
        &fx.s("x.parquet"),
    ]);
    assert!(err.contains("conv9") && err.contains("hidden0"), "{err}");
    assert!(!fx.path("x.parquet").exists());
}
