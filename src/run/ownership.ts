/**
 * Who owns a file in the image, when the disk cannot say. Rootless without subordinate ids (and
 * proot) cannot chown to other ids, so ownership from layers and USER steps is recorded here and
 * reported instead of the disk's. With real root or a full id map the disk is the truth and the
 * table stays empty (except for ids outside the map).
 */
import type { Stats } from 'node:fs';

export interface Owner {
  uid: number;
  gid: number;
}

export class OwnerTable {
  private readonly owners = new Map<string, Owner>();
  /** The ids files get on disk when this process creates them (0 inside a user namespace). */
  readonly selfUid: number;
  readonly selfGid: number;

  constructor(selfUid: number, selfGid: number) {
    this.selfUid = selfUid;
    this.selfGid = selfGid;
  }

  get size(): number {
    return this.owners.size;
  }

  record(rel: string, owner: Owner): void {
    if (owner.uid === 0 && owner.gid === 0) this.owners.delete(rel);
    else this.owners.set(rel, { uid: owner.uid, gid: owner.gid });
  }

  recorded(rel: string): Owner | undefined {
    return this.owners.get(rel);
  }

  forget(rel: string): void {
    this.owners.delete(rel);
  }

  /** Forget `rel` and everything below it (it was deleted or replaced). */
  forgetTree(rel: string): void {
    this.owners.delete(rel);
    const prefix = rel === '' ? '' : `${rel}/`;
    for (const key of this.owners.keys()) if (key.startsWith(prefix)) this.owners.delete(key);
  }

  /** The owner the disk shows, with our own ids read as root. */
  diskOwner(st: Pick<Stats, 'uid' | 'gid'>): Owner {
    return { uid: st.uid === this.selfUid ? 0 : st.uid, gid: st.gid === this.selfGid ? 0 : st.gid };
  }

  /**
   * The owner the image should show for `rel`. A file still owned by this process carries the
   * recorded owner (or root); anything else was chowned for real and the disk is right.
   */
  imageOwner(rel: string, st: Pick<Stats, 'uid' | 'gid'>): Owner {
    const mine = st.uid === this.selfUid;
    const mineG = st.gid === this.selfGid;
    const recorded = mine && mineG ? this.owners.get(rel) : undefined;
    return recorded ? { ...recorded } : this.diskOwner(st);
  }
}
