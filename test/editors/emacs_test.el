;;; emacs_test.el --- editors/emacs/infuse.el against the real server  -*- lexical-binding: t; -*-

;; Run by emacs_test.sh in batch mode: lsp-mode loads infuse.el, starts
;; `infuse serve' ($INFUSE_BIN) as an add-on client for a Python file, and
;; completes through `completion-at-point'; then eglot does the same with
;; `infuse-eglot-contact'.  Prints FAIL lines and "CASE: N passed, M failed".

(require 'cl-lib)
(require 'package)
;; Debian's elpa-* packages (apt-get install elpa-lsp-mode elpa-eglot).
(when (file-directory-p "/usr/share/emacs/site-lisp/elpa")
  (add-to-list 'package-directory-list "/usr/share/emacs/site-lisp/elpa"))
(package-initialize)

(defvar infuse-test-passed 0)
(defvar infuse-test-failed 0)
(defvar infuse-test-case (or (getenv "INFUSE_CASE") "lsp-mode"))

(defun infuse-test-check (ok what)
  (if ok
      (cl-incf infuse-test-passed)
    (cl-incf infuse-test-failed)
    (princ (format "FAIL [%s] %s\n" infuse-test-case what)))
  ok)

(defun infuse-test-finish ()
  (princ (format "%s: %d passed, %d failed\n" infuse-test-case infuse-test-passed infuse-test-failed))
  (kill-emacs (if (and (= infuse-test-failed 0) (> infuse-test-passed 0)) 0 1)))

(defun infuse-test-wait (pred &optional seconds)
  (let ((deadline (+ (float-time) (or seconds 30))))
    (while (and (not (funcall pred)) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (funcall pred)))

(defvar infuse-test-dir (make-temp-file "infuse-emacs-" t))
(defvar infuse-test-bin (getenv "INFUSE_BIN"))
(add-to-list 'load-path (expand-file-name "editors/emacs" (getenv "INFUSE_ROOT")))

(defun infuse-test-open ()
  (let ((file (expand-file-name "main.py" infuse-test-dir)))
    (with-temp-file file (insert "def add(a, b):\n    return \n"))
    (find-file file)
    (goto-char (point-min))
    (forward-line 1)
    (end-of-line)
    (infuse-test-check (derived-mode-p 'prog-mode) "a prog-mode buffer")))

(defun infuse-test-candidates (capf)
  "Call CAPF and return its candidates, or the symbol `error'."
  (condition-case err
      (let ((res (funcall capf)))
        (if (null res)
            nil
          (let* ((start (nth 0 res)) (end (nth 1 res)) (table (nth 2 res)))
            (all-completions (buffer-substring-no-properties start end) table))))
    (error (princ (format "capf error: %S\n" err)) 'error)))

(cond
 ((equal infuse-test-case "lsp-mode")
  (require 'lsp-mode)
  (require 'infuse)
  (setq infuse-command (list infuse-test-bin "serve")
        infuse-max-tokens 16
        infuse-timeout-ms 30000
        lsp-session-file (expand-file-name "session" infuse-test-dir)
        lsp-enable-file-watchers nil
        lsp-auto-guess-root nil
        lsp-restart 'ignore
        lsp-keep-workspace-alive nil)
  (let ((messages '()))
    (advice-add 'lsp--info :before (lambda (&rest args) (push (apply #'format args) messages)))
    (advice-add 'lsp--warn :before (lambda (&rest args) (push (apply #'format args) messages)))
    (infuse-test-open)
    (lsp-workspace-folders-add infuse-test-dir)
    (lsp)
    (infuse-test-check
     (infuse-test-wait (lambda () (cl-some (lambda (w) (eq (lsp--workspace-status w) 'initialized)) (lsp-workspaces))))
     "the infuse workspace initialized")
    (infuse-test-check (equal (mapcar (lambda (w) (lsp--client-server-id (lsp--workspace-client w))) (lsp-workspaces)) '(infuse))
                       "infuse is the buffer's add-on server")
    (let ((init (lsp--create-initialization-options (lsp-session) (lsp--workspace-client (car (lsp-workspaces))))))
      (infuse-test-check (equal (gethash "maxTokens" (gethash "infuse" init)) 16) "initialization options carry the settings"))
    (let ((c (infuse-test-candidates #'lsp-completion-at-point)))
      (infuse-test-check (not (eq c 'error)) "completion-at-point asked infuse")
      (infuse-test-check (and (listp c) (<= (length c) 1)) (format "one candidate at most: %S" c))
      (princ (format "lsp-mode candidates: %S\n" c)))
    (let ((st (lsp-request "infuse/stats" (make-hash-table))))
      (infuse-test-check (and (hash-table-p st) (>= (gethash "requests" st) 1) (= (gethash "failed" st) 0))
                         (format "stats: %S" st)))
    ;; A configuration pull is answered with the infuse section.
    (let ((resp (lsp--build-workspace-configuration-response
                 (lsp-make-configuration-params :items (vector (lsp-make-configuration-item :section "infuse"))))))
      (infuse-test-check (equal (gethash "maxTokens" (aref resp 0)) 16) (format "workspace/configuration: %S" resp)))
    (infuse-toggle)
    (let ((st0 (lsp-request "infuse/stats" (make-hash-table))))
      (infuse-test-candidates #'lsp-completion-at-point)
      (let ((st1 (lsp-request "infuse/stats" (make-hash-table))))
        (infuse-test-check (= (gethash "empty" st1) (1+ (gethash "empty" st0)))
                           (format "toggled off: the server answers empty (%S -> %S)" st0 st1))))
    (infuse-toggle)
    (infuse-test-check (not (cl-some (lambda (m) (string-match-p "infuse settings" m)) messages))
                       (format "no settings warning: %S" messages))))
 ((equal infuse-test-case "eglot")
  (require 'eglot)
  (require 'infuse)
  (setq infuse-command (list infuse-test-bin "serve")
        infuse-max-tokens 16)
  (add-to-list 'eglot-server-programs '(python-mode . infuse-eglot-contact))
  (infuse-test-open)
  ;; `eglot-ensure' waits for a command loop, which batch mode lacks: start
  ;; the server the way M-x eglot does.
  (apply #'eglot (eglot--guess-contact))
  (infuse-test-check (infuse-test-wait (lambda () (eglot-current-server))) "eglot connected")
  (let ((c (infuse-test-candidates #'eglot-completion-at-point)))
    (infuse-test-check (not (eq c 'error)) "completion-at-point asked infuse")
    (infuse-test-check (and (listp c) (<= (length c) 1)) (format "one candidate at most: %S" c)))
  (let ((st (jsonrpc-request (eglot-current-server) :infuse/stats (make-hash-table))))
    (infuse-test-check (and st (>= (plist-get st :requests) 1)) (format "stats: %S" st))))
 (t (infuse-test-check nil (format "unknown case %s" infuse-test-case))))

(infuse-test-finish)
