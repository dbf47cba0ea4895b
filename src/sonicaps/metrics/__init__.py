"""Caption and retrieval metrics: the COCO numbers without Java, SBERT-sim, R@k and mAP@10."""

from sonicaps.metrics.captions import CAPTION_METRICS, human_upper_bound, score
from sonicaps.metrics.ranking import retrieval, zero_shot_accuracy

__all__ = ["CAPTION_METRICS", "human_upper_bound", "retrieval", "score", "zero_shot_accuracy"]
