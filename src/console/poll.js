/** A hook that loads data now and every `intervalMs`, keeping the last good answer and the last error. */
import { useCallback, useEffect, useRef, useState } from './html.js';

/**
 * @param {() => Promise<any>} load
 * @param {number} intervalMs 0: load once
 * @param {any[]} deps reload at once when these change
 * @returns {{ data: any, error: Error | undefined, loading: boolean, reload: () => Promise<void> }}
 */
export function usePoll(load, intervalMs, deps) {
  const [data, setData] = useState(undefined);
  const [error, setError] = useState(undefined);
  const [loading, setLoading] = useState(true);
  const current = useRef(load);
  current.current = load;
  const reload = useCallback(async () => {
    try {
      setData(await current.current());
      setError(undefined);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  }, []);
  useEffect(() => {
    setLoading(true);
    void reload();
    if (!intervalMs) return undefined;
    const timer = setInterval(() => { if (!document.hidden) void reload(); }, intervalMs);
    return () => clearInterval(timer);
  }, deps);
  return { data, error, loading, reload };
}
