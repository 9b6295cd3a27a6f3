from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LastBatch(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LAST_BATCH_UNSPECIFIED: _ClassVar[LastBatch]
    LAST_BATCH_PARTIAL: _ClassVar[LastBatch]
    LAST_BATCH_DROP: _ClassVar[LastBatch]

class ScoringMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCORING_MODE_UNSPECIFIED: _ClassVar[ScoringMode]
    SCORING_MODE_ASYNC: _ClassVar[ScoringMode]
    SCORING_MODE_SYNC: _ClassVar[ScoringMode]
    SCORING_MODE_AHEAD: _ClassVar[ScoringMode]
LAST_BATCH_UNSPECIFIED: LastBatch
LAST_BATCH_PARTIAL: LastBatch
LAST_BATCH_DROP: LastBatch
SCORING_MODE_UNSPECIFIED: ScoringMode
SCORING_MODE_ASYNC: ScoringMode
SCORING_MODE_SYNC: ScoringMode
SCORING_MODE_AHEAD: ScoringMode

class Position(_message.Message):
    __slots__ = ("epoch", "step")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    step: int
    def __init__(self, epoch: _Optional[int] = ..., step: _Optional[int] = ...) -> None: ...

class OpenSession(_message.Message):
    __slots__ = ("dataset", "selector", "selector_params_json", "batch_size", "rank", "world_size", "seed", "columns", "job", "start", "max_in_flight", "scoring", "last_batch", "num_epochs", "score_columns", "max_batches_per_message", "feedback_sender")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    SCORING_FIELD_NUMBER: _ClassVar[int]
    LAST_BATCH_FIELD_NUMBER: _ClassVar[int]
    NUM_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    SCORE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCHES_PER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_SENDER_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    selector: str
    selector_params_json: str
    batch_size: int
    rank: int
    world_size: int
    seed: int
    columns: _containers.RepeatedScalarFieldContainer[str]
    job: str
    start: Position
    max_in_flight: int
    scoring: ScoringMode
    last_batch: LastBatch
    num_epochs: int
    score_columns: _containers.RepeatedScalarFieldContainer[str]
    max_batches_per_message: int
    feedback_sender: str
    def __init__(self, dataset: _Optional[str] = ..., selector: _Optional[str] = ..., selector_params_json: _Optional[str] = ..., batch_size: _Optional[int] = ..., rank: _Optional[int] = ..., world_size: _Optional[int] = ..., seed: _Optional[int] = ..., columns: _Optional[_Iterable[str]] = ..., job: _Optional[str] = ..., start: _Optional[_Union[Position, _Mapping]] = ..., max_in_flight: _Optional[int] = ..., scoring: _Optional[_Union[ScoringMode, str]] = ..., last_batch: _Optional[_Union[LastBatch, str]] = ..., num_epochs: _Optional[int] = ..., score_columns: _Optional[_Iterable[str]] = ..., max_batches_per_message: _Optional[int] = ..., feedback_sender: _Optional[str] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("count", "next")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    count: int
    next: Position
    def __init__(self, count: _Optional[int] = ..., next: _Optional[_Union[Position, _Mapping]] = ...) -> None: ...

class Feedback(_message.Message):
    __slots__ = ("rows", "scalars", "vectors", "sequence")
    class ScalarsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class VectorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SCALARS_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    rows: bytes
    scalars: _containers.ScalarMap[str, float]
    vectors: _containers.ScalarMap[str, bytes]
    sequence: int
    def __init__(self, rows: _Optional[bytes] = ..., scalars: _Optional[_Mapping[str, float]] = ..., vectors: _Optional[_Mapping[str, bytes]] = ..., sequence: _Optional[int] = ...) -> None: ...

class Scores(_message.Message):
    __slots__ = ("round", "feedback")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    round: int
    feedback: Feedback
    def __init__(self, round: _Optional[int] = ..., feedback: _Optional[_Union[Feedback, _Mapping]] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("open", "ack", "feedback", "scores")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    open: OpenSession
    ack: Ack
    feedback: Feedback
    scores: Scores
    def __init__(self, open: _Optional[_Union[OpenSession, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., feedback: _Optional[_Union[Feedback, _Mapping]] = ..., scores: _Optional[_Union[Scores, _Mapping]] = ...) -> None: ...

class SessionOpened(_message.Message):
    __slots__ = ("session_id", "job", "arrow_schema", "num_rows", "steps_per_epoch", "start", "max_in_flight", "selector", "dataset", "num_epochs", "max_batches_per_message", "feedback_numbered")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    ARROW_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    NUM_ROWS_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    NUM_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCHES_PER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_NUMBERED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    job: str
    arrow_schema: bytes
    num_rows: int
    steps_per_epoch: int
    start: Position
    max_in_flight: int
    selector: str
    dataset: str
    num_epochs: int
    max_batches_per_message: int
    feedback_numbered: bool
    def __init__(self, session_id: _Optional[str] = ..., job: _Optional[str] = ..., arrow_schema: _Optional[bytes] = ..., num_rows: _Optional[int] = ..., steps_per_epoch: _Optional[int] = ..., start: _Optional[_Union[Position, _Mapping]] = ..., max_in_flight: _Optional[int] = ..., selector: _Optional[str] = ..., dataset: _Optional[str] = ..., num_epochs: _Optional[int] = ..., max_batches_per_message: _Optional[int] = ..., feedback_numbered: _Optional[bool] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("batch_id", "position", "rank", "num_rows", "record_batch", "weights", "selector", "info_json", "next", "info_arrays", "padding")
    class InfoArraysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    NUM_ROWS_FIELD_NUMBER: _ClassVar[int]
    RECORD_BATCH_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    INFO_JSON_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    INFO_ARRAYS_FIELD_NUMBER: _ClassVar[int]
    PADDING_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    position: Position
    rank: int
    num_rows: int
    record_batch: bytes
    weights: bytes
    selector: str
    info_json: str
    next: Position
    info_arrays: _containers.ScalarMap[str, bytes]
    padding: bytes
    def __init__(self, batch_id: _Optional[str] = ..., position: _Optional[_Union[Position, _Mapping]] = ..., rank: _Optional[int] = ..., num_rows: _Optional[int] = ..., record_batch: _Optional[bytes] = ..., weights: _Optional[bytes] = ..., selector: _Optional[str] = ..., info_json: _Optional[str] = ..., next: _Optional[_Union[Position, _Mapping]] = ..., info_arrays: _Optional[_Mapping[str, bytes]] = ..., padding: _Optional[bytes] = ...) -> None: ...

class Batches(_message.Message):
    __slots__ = ("batches",)
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[Batch]
    def __init__(self, batches: _Optional[_Iterable[_Union[Batch, _Mapping]]] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("round", "position", "candidates")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    round: int
    position: Position
    candidates: bytes
    def __init__(self, round: _Optional[int] = ..., position: _Optional[_Union[Position, _Mapping]] = ..., candidates: _Optional[bytes] = ...) -> None: ...

class SessionResponse(_message.Message):
    __slots__ = ("opened", "batch", "score_request", "batches", "feedback_saved")
    OPENED_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    SCORE_REQUEST_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_SAVED_FIELD_NUMBER: _ClassVar[int]
    opened: SessionOpened
    batch: Batch
    score_request: ScoreRequest
    batches: Batches
    feedback_saved: FeedbackSaved
    def __init__(self, opened: _Optional[_Union[SessionOpened, _Mapping]] = ..., batch: _Optional[_Union[Batch, _Mapping]] = ..., score_request: _Optional[_Union[ScoreRequest, _Mapping]] = ..., batches: _Optional[_Union[Batches, _Mapping]] = ..., feedback_saved: _Optional[_Union[FeedbackSaved, _Mapping]] = ...) -> None: ...

class FeedbackSaved(_message.Message):
    __slots__ = ("sequence",)
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    def __init__(self, sequence: _Optional[int] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DatasetInfo(_message.Message):
    __slots__ = ("name", "num_rows", "num_kept", "columns", "embedding_model", "embedding_dim", "has_pairs")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUM_ROWS_FIELD_NUMBER: _ClassVar[int]
    NUM_KEPT_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_DIM_FIELD_NUMBER: _ClassVar[int]
    HAS_PAIRS_FIELD_NUMBER: _ClassVar[int]
    name: str
    num_rows: int
    num_kept: int
    columns: _containers.RepeatedScalarFieldContainer[str]
    embedding_model: str
    embedding_dim: int
    has_pairs: bool
    def __init__(self, name: _Optional[str] = ..., num_rows: _Optional[int] = ..., num_kept: _Optional[int] = ..., columns: _Optional[_Iterable[str]] = ..., embedding_model: _Optional[str] = ..., embedding_dim: _Optional[int] = ..., has_pairs: _Optional[bool] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetInfo]
    def __init__(self, datasets: _Optional[_Iterable[_Union[DatasetInfo, _Mapping]]] = ...) -> None: ...
