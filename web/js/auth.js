// Sign-in as a named local user. The console's own origin mints the ID token Firebase Auth would
// give (GET /local/token, which exists only in the local stack: tools/stack/console.py); the API
// verifies it as it verifies Firebase's. The token lives in this tab's sessionStorage.

import { failure, unreachable } from "./api.js";

const KEY = "imagegen-console-sign-in";

// {user, token} while this tab holds a token that has not expired, else null.
export function current() {
  const saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
  return saved && expiry(saved.token) > Date.now() + 60_000 ? saved : null;
}

export async function signIn(user) {
  const request = "GET /local/token";
  let answer;
  try {
    answer = await fetch(`local/token?user=${encodeURIComponent(user)}`, { cache: "no-store" });
  } catch (error) {
    throw unreachable(request, location.href, error);
  }
  if (!answer.ok) throw await failure(request, answer);
  const { token } = await answer.json();
  sessionStorage.setItem(KEY, JSON.stringify({ user, token }));
  return { user, token };
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

// The token's `exp` claim, in milliseconds.
function expiry(token) {
  const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(payload)).exp * 1000;
}
