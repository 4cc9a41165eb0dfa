/** Pages at /ui/…: the server answers every such path with the app, which picks the page. */

export const NAVIGATED = "fleetlog:navigated";

export function navigate(url: string, { replace = false } = {}): void {
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  window.dispatchEvent(new Event(NAVIGATED));
}

/** Follows clicks on links inside the app without reloading it. */
export function interceptLinks(root: HTMLElement): void {
  root.addEventListener("click", (event) => {
    const link = (event.target as Element).closest("a[data-link]");
    if (!(link instanceof HTMLAnchorElement) || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    navigate(link.pathname + link.search);
  });
}
