"""Put result objects and hand out expiring links to them."""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import shutil
import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import aioboto3
import botocore.session
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from cure.config import Settings, StorageSettings, reveal


class Storage(Protocol):
    async def put(self, key: str, data: bytes, *, media_type: str) -> None: ...

    async def put_file(self, key: str, path: Path, *, media_type: str) -> None:
        """Store a file's bytes under ``key``, streamed from disk (never whole in memory)."""
        ...

    async def keys(self, prefix: str) -> list[str]:
        """Every stored key that starts with ``prefix``."""
        ...

    async def get_file(self, key: str, path: Path) -> None:
        """Copy the object at ``key`` to ``path``, streamed."""
        ...

    async def read(self, key: str) -> bytes | None:
        """The bytes of the (small) object at ``key``, or None when there is none: one request,
        no listing."""
        ...

    async def presigned_url(self, key: str, *, expires_in: int) -> str: ...

    async def presigned_urls(self, keys: list[str], *, expires_in: int) -> dict[str, str]:
        """Links to many objects at once (one client for all of them)."""
        ...

    async def download_url(self, key: str, *, expires_in: int, filename: str) -> str:
        """An expiring link that a browser saves as ``filename`` rather than shows."""
        ...

    async def delete(self, keys: list[str]) -> None:
        """Remove the objects; keys that are not there are ignored."""
        ...

    async def check(self) -> None:
        """Raise unless storage can be used now (readiness)."""
        ...

    async def close(self) -> None:
        """Let go of what the storage keeps on the running event loop (its S3 client)."""
        ...


# Files smaller than this are stored with one PUT; larger ones by a managed (multipart) transfer.
SINGLE_PUT_BYTES = 8 << 20


class _LinkSigner:
    """Presigned GET links exactly as the S3 client makes them (signature version 4 in the
    query, path-style), without what the client does around each one: resolving the endpoint
    by its rule set and serialising a request took 0.3 of the 0.37 ms a link cost, half of a
    catalogue search's CPU (BENCHMARKS.md, row 7). The URL up to the key is the client's own,
    read from one link it made; tests/storage/test_links.py checks the links are the client's.
    """

    BASE_KEY = "cure-link-base"

    def __init__(self, client: Any, bucket: str, credentials: Credentials) -> None:
        sample: str = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": self.BASE_KEY}, ExpiresIn=60
        )
        path = sample.split("?", 1)[0]
        if not path.endswith("/" + self.BASE_KEY):
            raise ValueError(f"unexpected link layout: {path}")
        self.base = path[: -len(self.BASE_KEY)]
        self.region = client.meta.region_name
        self.credentials = credentials

    def url(self, key: str, expires_in: int) -> str:
        request = AWSRequest(method="GET", url=self.base + quote(key, safe="/~"))
        S3SigV4QueryAuth(self.credentials, "s3", self.region, expires=expires_in).add_auth(request)
        return str(request.url)


class _KeptClient:
    """An S3 client kept open on one event loop, and the context that closes it; how many calls
    use it now, and whether it was dropped (closed once the last of them is done)."""

    def __init__(self, context: Any, client: Any) -> None:
        self.context = context
        self.client = client
        self.users = 0
        self.dropped = False

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.context.__aexit__(None, None, None)


class S3Storage:
    """S3 through aioboto3. ``keep_client``: one client per event loop, kept open across calls
    (made per call, a small PUT cost 9.4 ms of CPU, on a kept client 4.7 ms: BENCHMARKS.md,
    rows 4 and 5); its owner calls ``close()`` on that loop when it is done. A kept client is
    never shared between loops, and one whose call failed other than by S3's own answer (a
    connection refused or reset, a cancel mid-call) is dropped, so the next call starts anew.
    Without it (short-lived storages: a readiness check, a command) each call makes its own."""

    def __init__(self, settings: StorageSettings, *, keep_client: bool = False) -> None:
        self._bucket = settings.s3_bucket
        self._session = aioboto3.Session()
        self._keep = keep_client
        self._kept: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _KeptClient] = (
            weakref.WeakKeyDictionary()
        )
        self._closing: set[asyncio.Task[None]] = set()
        self._signing_client: Any = None
        self._link_signer: _LinkSigner | None = None
        secret = settings.s3_secret_access_key
        self._static_credentials = (
            Credentials(settings.s3_access_key_id, secret.get_secret_value())
            if settings.s3_access_key_id and secret
            else None
        )
        self._client_args = {
            # A plain-HTTP endpoint has no certificate to check: not loading the CA bundle
            # saves every call 25-30 ms of CPU (BENCHMARKS.md, rows 4 and 5).
            "verify": False if (settings.s3_endpoint_url or "").startswith("http://") else None,
            "endpoint_url": settings.s3_endpoint_url,
            "region_name": settings.s3_region,
            "aws_access_key_id": settings.s3_access_key_id,
            "aws_secret_access_key": (
                settings.s3_secret_access_key.get_secret_value()
                if settings.s3_secret_access_key
                else None
            ),
            # Every call is bounded: a hung S3 endpoint must not hold a worker or a request.
            "config": Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=10,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                # A kept client serves every call of its process: one large multipart
                # transfer (10 parts at once) must not take all of botocore's default 10.
                max_pool_connections=32,
            ),
        }

    def _new_client(self):  # type: ignore[no-untyped-def]
        return self._session.client("s3", **self._client_args)

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[Any]:
        if not self._keep:
            async with self._new_client() as s3:
                yield s3
            return
        kept = await self._kept_client()
        kept.users += 1
        try:
            yield kept.client
        except ClientError:
            raise  # S3 answered: the client and its connections are sound
        except BaseException:
            self._drop(kept)
            raise
        finally:
            kept.users -= 1
            if kept.dropped and kept.users == 0:
                self._close_later(kept)

    async def _kept_client(self) -> _KeptClient:
        loop = asyncio.get_running_loop()
        kept = self._kept.get(loop)
        if kept is None:
            context = self._new_client()
            made = _KeptClient(context, await context.__aenter__())
            kept = self._kept.setdefault(loop, made)  # another call may have made one meanwhile
            if kept is not made:
                await made.close()
        return kept

    def _drop(self, kept: _KeptClient) -> None:
        """Forget a client whose call failed: the next call makes a new one. Other calls may
        still be using it (its connections are theirs too), so the last of them to finish
        closes it (``_close_later``), never this one."""
        loop = asyncio.get_running_loop()
        if self._kept.get(loop) is kept:
            del self._kept[loop]
        kept.dropped = True

    def _close_later(self, kept: _KeptClient) -> None:
        """Close a dropped client in the background (its last call may be being cancelled);
        ``close()`` waits for that."""
        task = asyncio.get_running_loop().create_task(kept.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        kept = self._kept.pop(loop, None)
        if kept is not None:
            kept.dropped = True
            if kept.users == 0:  # else the last call still using it closes it
                await kept.close()
        mine = [task for task in self._closing if task.get_loop() is loop]
        await asyncio.gather(*mine, return_exceptions=True)

    async def ensure_bucket(self) -> None:
        async with self._client() as s3:
            try:
                await s3.head_bucket(Bucket=self._bucket)
            except ClientError:
                await s3.create_bucket(Bucket=self._bucket)

    async def check(self) -> None:
        async with self._client() as s3:
            await s3.head_bucket(Bucket=self._bucket)

    async def put(self, key: str, data: bytes, *, media_type: str) -> None:
        async with self._client() as s3:
            await s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=media_type)

    async def put_file(self, key: str, path: Path, *, media_type: str) -> None:
        size = (await asyncio.to_thread(path.stat)).st_size
        if size < SINGLE_PUT_BYTES:
            # One request: a managed transfer costs a small file 35-45 ms more than put_object.
            await self.put(key, await asyncio.to_thread(path.read_bytes), media_type=media_type)
            return
        async with self._client() as s3:
            # A managed transfer: multipart for large files, read from disk in parts.
            await s3.upload_file(
                str(path), self._bucket, key, ExtraArgs={"ContentType": media_type}
            )

    async def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        async with self._client() as s3:
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                found += [item["Key"] for item in page.get("Contents", [])]
        return found

    async def get_file(self, key: str, path: Path) -> None:
        async with self._client() as s3:
            await s3.download_file(self._bucket, key, str(path))

    async def read(self, key: str) -> bytes | None:
        async with self._client() as s3:
            try:
                found = await s3.get_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            async with found["Body"] as body:
                data: bytes = await body.read()
                return data

    async def presigned_url(self, key: str, *, expires_in: int) -> str:
        return (await self.presigned_urls([key], expires_in=expires_in))[key]

    def _signer(self) -> Any:
        """A botocore client kept for signing links: signing is computation alone (no request),
        and a client made per page of links cost a catalogue search 20 of its 23 ms of CPU
        (BENCHMARKS.md, row 7). Made at the first link, used only on this event loop's thread."""
        if self._signing_client is None:
            self._signing_client = botocore.session.get_session().create_client(
                "s3", **self._client_args
            )
        return self._signing_client

    def _links(self) -> "_LinkSigner | None":
        """Plain GET links signed without the client's per-link machinery, when the keys are
        configured (credentials from the environment or a role may be refreshed: the client
        signs those)."""
        if self._link_signer is None and self._static_credentials is not None:
            self._link_signer = _LinkSigner(self._signer(), self._bucket, self._static_credentials)
        return self._link_signer

    async def presigned_urls(self, keys: list[str], *, expires_in: int) -> dict[str, str]:
        if not keys:
            return {}
        links = self._links()
        if links is not None:
            return {key: links.url(key, expires_in) for key in keys}
        signer = self._signer()
        return {
            key: signer.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
            )
            for key in keys
        }

    async def download_url(self, key: str, *, expires_in: int, filename: str) -> str:
        safe = "".join(c for c in filename if c.isalnum() or c in "._-") or "download"
        url: str = self._signer().generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{safe}"',
            },
            ExpiresIn=expires_in,
        )
        return url

    async def delete(self, keys: list[str]) -> None:
        if not keys:
            return
        async with self._client() as s3:
            answer = await s3.delete_objects(
                Bucket=self._bucket, Delete={"Objects": [{"Key": key} for key in keys]}
            )
        if errors := answer.get("Errors"):  # refused one by one, in an answer of 200
            raise OSError(f"{len(errors)} object(s) not deleted: {errors[0].get('Message')}")


class LocalStorage:
    """Files under a directory, served by the API itself through HMAC-signed, expiring links.

    For a single machine with no S3 service: results survive restarts, links behave like S3's.
    """

    def __init__(self, settings: Settings) -> None:
        self.root = settings.storage_dir.resolve()
        self._secret = reveal(settings.storage_secret, "CURE_STORAGE_SECRET").encode()
        self._base = settings.public_url.rstrip("/")

    def path_of(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError("key escapes the storage directory")
        return path

    async def put(self, key: str, data: bytes, *, media_type: str) -> None:
        await asyncio.to_thread(self._write, key, data, media_type)

    async def check(self) -> None:
        def writable() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise PermissionError(f"{self.root} is not writable")

        await asyncio.to_thread(writable)

    async def put_file(self, key: str, path: Path, *, media_type: str) -> None:
        await asyncio.to_thread(self._copy, key, path, media_type)

    def _copy(self, key: str, source: Path, media_type: str) -> None:
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)
        path.with_name(path.name + ".type").write_text(media_type)

    def _write(self, key: str, data: bytes, media_type: str) -> None:
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers see the whole object or none of it
        path.with_name(path.name + ".type").write_text(media_type)

    async def keys(self, prefix: str) -> list[str]:
        def walk() -> list[str]:
            # Only the folder the prefix names (its part up to the last "/"), not the whole tree.
            try:
                top = self.path_of(prefix.rpartition("/")[0])
            except ValueError:
                return []
            if not top.is_dir():
                return []
            found = (p.relative_to(self.root).as_posix() for p in top.rglob("*"))
            return sorted(
                key
                for key in found
                if key.startswith(prefix)
                and not key.endswith((".type", ".part"))
                and (self.root / key).is_file()
            )

        return await asyncio.to_thread(walk)

    async def get_file(self, key: str, path: Path) -> None:
        await asyncio.to_thread(shutil.copyfile, self.path_of(key), path)

    async def read(self, key: str) -> bytes | None:
        def read_file() -> bytes | None:
            path = self.path_of(key)
            if path.name.endswith((".type", ".part")):
                return None  # the store's own bookkeeping, never an object
            try:
                return path.read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None

        return await asyncio.to_thread(read_file)

    def media_type(self, key: str) -> str:
        type_file = self.path_of(key).with_name(self.path_of(key).name + ".type")
        return type_file.read_text() if type_file.exists() else "application/octet-stream"

    def signature(self, key: str, expires: int) -> str:
        mac = hmac.new(self._secret, f"{key}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def verify(self, key: str, expires: int, signature: str) -> bool:
        # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
        given = signature.encode("utf-8", errors="surrogateescape")
        return expires >= time.time() and hmac.compare_digest(
            self.signature(key, expires).encode(), given
        )

    async def presigned_urls(self, keys: list[str], *, expires_in: int) -> dict[str, str]:
        return {key: await self.presigned_url(key, expires_in=expires_in) for key in keys}

    async def delete(self, keys: list[str]) -> None:
        def remove() -> None:
            for key in keys:
                path = self.path_of(key)
                for leftover in (path, path.with_name(path.name + ".type")):
                    leftover.unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    async def close(self) -> None:
        return None

    async def presigned_url(self, key: str, *, expires_in: int) -> str:
        expires = int(time.time()) + expires_in
        query = urlencode({"expires": expires, "signature": self.signature(key, expires)})
        return f"{self._base}/v1/storage/{quote(key)}?{query}"

    async def download_url(self, key: str, *, expires_in: int, filename: str) -> str:
        # The API serves local objects as attachments named after the key's last part.
        return await self.presigned_url(key, expires_in=expires_in)


def make_storage(settings: Settings, *, kept: bool = False) -> S3Storage | LocalStorage:
    """The configured storage. ``kept``: for an owner that lives as long as its event loop (the
    API, a worker process, a service loop) and calls ``close()`` at its end; S3 then keeps one
    client per loop instead of making one per call."""
    if settings.storage_backend == "s3":
        return S3Storage(settings, keep_client=kept)
    return LocalStorage(settings)
