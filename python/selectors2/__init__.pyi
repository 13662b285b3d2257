# Type stubs of selectors2: the standard library's `selectors` as typeshed
# types it, so that a program that type-checks with `import selectors`
# type-checks with `import selectors2 as selectors`. Where this module
# differs at run time in ways typeshed's shapes cannot say (`get_map()` is
# None once closed), the stub keeps typeshed's shape, as that is what the
# programs it serves were checked against.
import sys
from _typeshed import FileDescriptor, FileDescriptorLike, Unused
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from typing import Any, NamedTuple

from typing_extensions import Self, TypeAlias

_EventMask: TypeAlias = int

__version__: str
__all__ = [
    "EVENT_READ", "EVENT_WRITE", "SelectorKey", "BaseSelector",
    "DefaultSelector", "SelectSelector", "PollSelector",
]
if sys.platform == "linux":
    __all__ += ["EpollSelector"]
if sys.platform != "linux" and sys.platform != "win32":
    __all__ += ["KqueueSelector"]

EVENT_READ: _EventMask
EVENT_WRITE: _EventMask

class SelectorKey(NamedTuple):
    fileobj: FileDescriptorLike
    fd: FileDescriptor
    events: _EventMask
    data: Any

class BaseSelector(metaclass=ABCMeta):
    @abstractmethod
    def register(self, fileobj: FileDescriptorLike, events: _EventMask, data: Any = None) -> SelectorKey: ...
    @abstractmethod
    def unregister(self, fileobj: FileDescriptorLike) -> SelectorKey: ...
    def modify(self, fileobj: FileDescriptorLike, events: _EventMask, data: Any = None) -> SelectorKey: ...
    @abstractmethod
    def select(self, timeout: float | None = None) -> list[tuple[SelectorKey, _EventMask]]: ...
    def close(self) -> None: ...
    def get_key(self, fileobj: FileDescriptorLike) -> SelectorKey: ...
    @abstractmethod
    def get_map(self) -> Mapping[FileDescriptorLike, SelectorKey]: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *args: Unused) -> None: ...

class _NativeBase(BaseSelector, metaclass=ABCMeta):
    def register(self, fileobj: FileDescriptorLike, events: _EventMask, data: Any = None) -> SelectorKey: ...
    def unregister(self, fileobj: FileDescriptorLike) -> SelectorKey: ...
    def modify(self, fileobj: FileDescriptorLike, events: _EventMask, data: Any = None) -> SelectorKey: ...
    def select(self, timeout: float | None = None) -> list[tuple[SelectorKey, _EventMask]]: ...
    def get_map(self) -> Mapping[FileDescriptorLike, SelectorKey]: ...

class SelectSelector(_NativeBase): ...
class PollSelector(_NativeBase): ...

if sys.platform == "linux":
    class EpollSelector(_NativeBase):
        def fileno(self) -> int: ...

if sys.platform != "linux" and sys.platform != "win32":
    class KqueueSelector(_NativeBase):
        def fileno(self) -> int: ...

# An alias of one of the classes above at run time (the first mechanism
# that works here), a class of its own for type checkers, as in typeshed.
class DefaultSelector(_NativeBase):
    if sys.platform != "win32":
        def fileno(self) -> int: ...
