// A small client-side router over the History API: the Go server answers
// every page path with index.html (web/ui.go), and this picks the page.

export type Route =
  | { page: 'editor' }
  | { page: 'execution'; id: string }
  | { page: 'history' }
  | { page: 'scripts' }
  | { page: 'sign-in' }
  | { page: 'sign-up' }
  | { page: 'tokens' }
  | { page: 'admin'; section: 'overview' | 'users' | 'executions' }
  | { page: 'not-found'; path: string };

export function match(path: string): Route {
  if (path === '/' || path === '') return { page: 'editor' };
  const exec = /^\/executions\/([^/]+)\/?$/.exec(path);
  if (exec) return { page: 'execution', id: decodeURIComponent(exec[1]) };
  switch (path.replace(/\/$/, '')) {
    case '/history':
      return { page: 'history' };
    case '/scripts':
      return { page: 'scripts' };
    case '/sign-in':
      return { page: 'sign-in' };
    case '/sign-up':
      return { page: 'sign-up' };
    case '/tokens':
      return { page: 'tokens' };
    case '/admin':
      return { page: 'admin', section: 'overview' };
    case '/admin/users':
      return { page: 'admin', section: 'users' };
    case '/admin/executions':
      return { page: 'admin', section: 'executions' };
  }
  return { page: 'not-found', path };
}

class Router {
  route = $state<Route>(match(location.pathname));
  search = $state(location.search);

  constructor() {
    addEventListener('popstate', () => this.sync());
  }

  private sync() {
    this.route = match(location.pathname);
    this.search = location.search;
  }

  go(href: string, opts: { replace?: boolean } = {}) {
    if (opts.replace) history.replaceState(null, '', href);
    else history.pushState(null, '', href);
    this.sync();
    // A new page: start at its top, and let screen readers know (App moves focus to <h1>).
    scrollTo(0, 0);
  }
}

export const router = new Router();

/** Click handler for <a href> inside the app: navigates without a reload. */
export function navigate(e: MouseEvent) {
  const a = (e.currentTarget ?? e.target) as HTMLAnchorElement;
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  if (a.origin !== location.origin || a.target) return;
  e.preventDefault();
  router.go(a.pathname + a.search + a.hash);
}
