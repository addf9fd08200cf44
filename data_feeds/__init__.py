"""Market data: validated CSV/Parquet/DataFrame loaders, bundled real panel, synthetic regimes."""

from data_feeds.bundled_panel import BUNDLED_ASSET_CLASSES, load_bundled
from data_feeds.loaders import from_dataframe, load_csv, load_parquet
from data_feeds.parquet_chunks import ParquetChunks
from data_feeds.synthetic import generate_regime_panel, two_state_example

__all__ = [
    "BUNDLED_ASSET_CLASSES",
    "ParquetChunks",
    "from_dataframe",
    "generate_regime_panel",
    "load_bundled",
    "load_csv",
    "load_parquet",
    "two_state_example",
]
