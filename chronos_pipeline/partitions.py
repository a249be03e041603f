"""One dynamic partition per uploaded video; the key is the video id."""

import dagster as dg

VIDEOS = "videos"
videos_partitions = dg.DynamicPartitionsDefinition(name=VIDEOS)
