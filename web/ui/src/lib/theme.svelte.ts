// Light or dark: the system's setting unless the user picked one (kept in
// localStorage). The CSS follows prefers-color-scheme on its own; an
// explicit choice sets data-theme on <html>, which the CSS prefers.

export type ThemeChoice = 'system' | 'light' | 'dark';
const KEY = 'integr8scode.theme';

class Theme {
  choice = $state<ThemeChoice>(read());
  systemDark = $state(matchMedia('(prefers-color-scheme: dark)').matches);

  constructor() {
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', (e) => (this.systemDark = e.matches));
    this.apply();
  }

  get dark(): boolean {
    return this.choice === 'dark' || (this.choice === 'system' && this.systemDark);
  }

  set(choice: ThemeChoice) {
    this.choice = choice;
    try {
      if (choice === 'system') localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, choice);
    } catch {
      // storage disabled: the choice lasts for this page only
    }
    this.apply();
  }

  private apply() {
    if (this.choice === 'system') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = this.choice;
  }
}

function read(): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' ? v : 'system';
  } catch {
    return 'system';
  }
}

export const theme = new Theme();
