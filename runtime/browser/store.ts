// Checkpoints in a browser: downloaded as a safetensors file, or kept in
// IndexedDB (by the bundle's manifest digest) to resume after a reload.

const DB = "gradc";
const STORE = "checkpoints";

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error(`IndexedDB: cannot open ${DB} (${req.error?.message ?? "unknown error"})`));
  });
}

async function withStore<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result as T);
      tx.onerror = () => reject(new Error(`IndexedDB: ${tx.error?.message ?? "the transaction failed"}`));
    });
  } finally {
    db.close();
  }
}

/** Keeps a checkpoint's bytes under `key`, replacing the one there. */
export function storeCheckpoint(key: string, bytes: Uint8Array): Promise<void> {
  return withStore<void>("readwrite", (s) => s.put(bytes, key));
}

/** The checkpoint kept under `key`, if any. */
export async function loadCheckpoint(key: string): Promise<Uint8Array | undefined> {
  const v = await withStore<unknown>("readonly", (s) => s.get(key));
  return v instanceof Uint8Array ? v : undefined;
}

/** Forgets the checkpoint under `key`. */
export function deleteCheckpoint(key: string): Promise<void> {
  return withStore<void>("readwrite", (s) => s.delete(key));
}

/** Offers bytes to the user as a file download. */
export function downloadBytes(bytes: Uint8Array, fileName: string, type = "application/octet-stream"): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = fileName;
  a.rel = "noopener";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
