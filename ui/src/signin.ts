/** Sign-in with a user name and password (the OAuth2 password flow of /api/auth/token). */

import { h, replace } from "./dom";
import { signIn } from "./session";

export class SignInPage {
  readonly element: HTMLElement;
  private readonly user = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  private readonly password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  private readonly problem = h("p", { class: "form-error", role: "alert" });

  constructor(private readonly onSignedIn: () => void) {
    this.element = h(
      "div",
      { class: "signin-page" },
      h(
        "form",
        { class: "signin", onsubmit: (event: Event) => void this.submit(event) },
        h("h1", {}, "Sign in to fleetlog"),
        h("div", { class: "field" }, h("label", { for: "username" }, "User name"), this.user),
        h("div", { class: "field" }, h("label", { for: "password" }, "Password"), this.password),
        this.problem,
        h("button", { type: "submit" }, "Sign in"),
      ),
    );
  }

  show(): void {
    replace(this.problem);
    this.user.focus();
  }

  private async submit(event: Event): Promise<void> {
    event.preventDefault();
    const problem = await signIn(this.user.value, this.password.value);
    if (problem !== null) {
      this.problem.textContent = problem;
      return;
    }
    this.password.value = "";
    this.onSignedIn();
  }
}
