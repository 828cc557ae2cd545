// The message area: every current error, warning and note, one per area and kind.
import type { Notice, NoticeArea } from '../messages.ts';
import type { Slice } from './app-state.ts';

export interface NoticesSlice {
  notices: Notice[];
  notify(n: Omit<Notice, 'id'>): void;
  dismiss(id: number): void;
  clearNotices(area: NoticeArea): void;
}

let noticeId = 0;

export const createNoticesSlice: Slice<NoticesSlice> = (set) => ({
  notices: [],
  notify(n) {
    // One message per area and kind: a repeated failure replaces the old one.
    set((s) => ({
      notices: [...s.notices.filter((x) => !(x.area === n.area && x.kind === n.kind)), { ...n, id: ++noticeId }],
    }));
  },
  dismiss(id) {
    set((s) => ({ notices: s.notices.filter((n) => n.id !== id) }));
  },
  clearNotices(area) {
    set((s) => ({ notices: s.notices.filter((n) => n.area !== area) }));
  },
});
