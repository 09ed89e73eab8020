//! The data sets dae trains on (MNIST, Fashion-MNIST): fetching and checking the published
//! `.gz` files, and reading their IDX contents.

pub mod download;
pub mod error;
pub mod idx;

pub use download::{DatasetSpec, FASHION_MNIST, MNIST, ensure_files, md5_file, verify, verify_file};
pub use error::DataError;
pub use idx::{IdxImages, parse_images, parse_labels, read_images, read_labels, read_pair, write_images_gz, write_labels_gz};
