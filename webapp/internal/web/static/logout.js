// Posts the logout page's form to the login service at once. The form carries the ID token
// as a logout hint; a form post keeps it out of URLs, and so out of the browser's history
// and proxies' logs. Without scripts, the page's Continue button does the same.
document.getElementById("end-session").submit();
