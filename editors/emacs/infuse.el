;;; infuse.el --- Code completion from the infuse language server  -*- lexical-binding: t; -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "27.1"))
;; Keywords: languages, tools, convenience
;; URL: https://github.com/infuse-lsp/infuse

;;; Commentary:

;; infuse is a language server (`infuse serve') that fills the code between
;; the text before and after the cursor with a masked-diffusion language
;; model running on your machine.  This file registers it with lsp-mode as an
;; add-on client, so that it runs next to the buffer's usual server:
;;
;;   (require 'infuse)        ; after lsp-mode is on the load-path
;;   (add-hook 'prog-mode-hook #'lsp-deferred)
;;
;; With lsp-mode 9.0.1 or later (lsp-inline-completion.el) the suggestion is
;; shown as ghost text after a short idle time; with older versions it is an
;; item of `completion-at-point' (company, corfu).  For eglot, see
;; `infuse-eglot-contact' and README.md beside this file.

;;; Code:

(require 'cl-lib)
(require 'subr-x)

(defgroup infuse nil
  "Code completion from the infuse language server."
  :group 'tools
  :prefix "infuse-")

(defcustom infuse-command '("infuse" "serve")
  "The server command and its arguments.
Use the binary's full path when it is not on `exec-path'."
  :type '(repeat string))

(defcustom infuse-modes '(prog-mode)
  "Major modes (and the modes derived from them) infuse completes in."
  :type '(repeat symbol))

(defun infuse--set (symbol value)
  "Set SYMBOL to VALUE and send the settings to running servers."
  (set-default symbol value)
  (when (fboundp 'infuse-send-settings)
    (infuse-send-settings)))

(defcustom infuse-model nil
  "Model directory (Hugging Face layout); nil: the model embedded in infuse."
  :type '(choice (const :tag "Embedded model" nil) directory)
  :set #'infuse--set)

(defcustom infuse-device nil
  "Where the model runs; nil: the server's default."
  :type '(choice (const :tag "Server default" nil)
                 (const "auto") (const "cpu") (const "cuda"))
  :set #'infuse--set)

(defcustom infuse-mode nil
  "How much one completion may span; nil: the server's default (auto)."
  :type '(choice (const :tag "Server default" nil)
                 (const "auto") (const "single-line") (const "multi-line"))
  :set #'infuse--set)

(defcustom infuse-max-tokens nil
  "Bound on one completion's tokens; nil: the server's default."
  :type '(choice (const :tag "Server default" nil) natnum)
  :set #'infuse--set)

(defcustom infuse-enable t
  "Completions on (t) or off (nil), or per language id.
An alist such as ((\"markdown\" . nil) (\"*\" . t)) switches languages
one by one; \"*\" stands for the languages not listed."
  :type '(choice boolean (alist :key-type string :value-type boolean))
  :set #'infuse--set)

(defcustom infuse-debounce-ms nil
  "Milliseconds the server waits after a keystroke (automatic requests).
nil: the server's default (75)."
  :type '(choice (const :tag "Server default" nil) natnum)
  :set #'infuse--set)

(defcustom infuse-timeout-ms nil
  "Deadline for one completion in milliseconds; nil: the server's 5000."
  :type '(choice (const :tag "Server default" nil) natnum)
  :set #'infuse--set)

(defcustom infuse-prefix-chars nil
  "Characters before point sent to the model (0: all); nil: 4000."
  :type '(choice (const :tag "Server default" nil) natnum)
  :set #'infuse--set)

(defcustom infuse-suffix-chars nil
  "Characters after point sent to the model (0: all); nil: 1500."
  :type '(choice (const :tag "Server default" nil) natnum)
  :set #'infuse--set)

(defcustom infuse-hole-markers nil
  "What the \"Fill holes\" code action replaces; nil: (\"/*?*/\")."
  :type '(choice (const :tag "Server default" nil) (repeat string))
  :set #'infuse--set)

(defcustom infuse-inline-idle-delay 0.3
  "Idle seconds before lsp-mode asks for ghost text in infuse buffers.
Used with lsp-mode's inline completion (9.0.1 and later)."
  :type 'number)

(defvar infuse--paused nil
  "Non-nil while completions are turned off with `infuse-toggle'.")

(defun infuse-settings ()
  "The server's `infuse' settings as a hash table, for JSON.
Options left nil are left out, so that the server keeps its defaults."
  (let ((h (make-hash-table :test 'equal)))
    (cl-flet ((put (key value) (when value (puthash key value h))))
      (put "model" infuse-model)
      (put "device" infuse-device)
      (put "mode" infuse-mode)
      (put "maxTokens" infuse-max-tokens)
      (put "debounceMs" infuse-debounce-ms)
      (put "timeoutMs" infuse-timeout-ms)
      (put "prefixChars" infuse-prefix-chars)
      (put "suffixChars" infuse-suffix-chars)
      (put "holeMarkers" (and infuse-hole-markers (vconcat infuse-hole-markers))))
    (let ((enable (make-hash-table :test 'equal)))
      (cond
       (infuse--paused (puthash "*" :json-false enable))
       ((eq infuse-enable t))
       ((null infuse-enable) (puthash "*" :json-false enable))
       ((consp infuse-enable)
        (dolist (entry infuse-enable)
          (puthash (format "%s" (car entry)) (if (cdr entry) t :json-false) enable))))
      (when (> (hash-table-count enable) 0)
        (puthash "enable" enable h)))
    h))

(defun infuse--section ()
  "The settings under the key `infuse', as the server reads them."
  (let ((h (make-hash-table :test 'equal)))
    (puthash "infuse" (infuse-settings) h)
    h))

(defun infuse--wanted-p (mode)
  "Whether infuse completes in major MODE."
  (and infuse-modes (apply #'provided-mode-derived-p mode infuse-modes)))

(defun infuse--executable ()
  "The server binary, if it can be found."
  (let ((exe (car infuse-command)))
    (and exe (if (file-name-absolute-p exe)
                 (and (file-executable-p exe) exe)
               (executable-find exe)))))

;;; lsp-mode

(declare-function lsp-register-client "lsp-mode")
(declare-function make-lsp-client "lsp-mode")
(declare-function lsp-stdio-connection "lsp-mode")
(declare-function lsp-notify "lsp-mode")
(declare-function lsp--workspace-client "lsp-mode")
(declare-function lsp--client-server-id "lsp-mode")
(declare-function lsp--session-workspaces "lsp-mode")
(declare-function lsp-session "lsp-mode")
(declare-function lsp-workspaces "lsp-mode")
(declare-function lsp-workspace-restart "lsp-mode")
(declare-function lsp-request "lsp-mode")
(declare-function lsp-inline-completion-display "lsp-inline-completion")
(defvar lsp-language-id-configuration)
(defvar lsp-inline-completion-idle-delay)
(defvar lsp--cur-workspace)

(defun infuse--language-id (buffer)
  "The LSP language id of BUFFER: lsp-mode's table, else the mode's name."
  (with-current-buffer buffer
    (or (and (boundp 'lsp-language-id-configuration)
             (cl-loop for (match . id) in lsp-language-id-configuration
                      when (and (symbolp match) (derived-mode-p match)) return id))
        (replace-regexp-in-string "\\(-ts\\)?-mode\\'" "" (symbol-name major-mode)))))

(defun infuse--workspaces ()
  "The running infuse workspaces of lsp-mode."
  (and (fboundp 'lsp-session)
       (cl-remove-if-not
        (lambda (w) (eq (lsp--client-server-id (lsp--workspace-client w)) 'infuse))
        (lsp--session-workspaces (lsp-session)))))

(defun infuse-send-settings ()
  "Send the current settings to every running infuse server."
  (interactive)
  (dolist (w (infuse--workspaces))
    (let ((lsp--cur-workspace w))
      (lsp-notify "workspace/didChangeConfiguration" (list :settings (infuse--section))))))

(defun infuse-toggle ()
  "Turn completions off or on, for every language."
  (interactive)
  (setq infuse--paused (not infuse--paused))
  (infuse-send-settings)
  (message "infuse: completions %s" (if infuse--paused "off" "on")))

(defun infuse-stats ()
  "Show the server's session counters (infuse/stats)."
  (interactive)
  (let ((w (car (infuse--workspaces))))
    (unless w (user-error "infuse: the server is not running"))
    (let* ((lsp--cur-workspace w)
           (st (lsp-request "infuse/stats" (make-hash-table))))
      (message "infuse: %s requests: %s from the model, %s from the cache, %s empty, %s superseded, %s cancelled, %s timed out, %s failed"
               (gethash "requests" st) (gethash "completed" st) (gethash "cacheHits" st)
               (gethash "empty" st) (gethash "superseded" st) (gethash "cancelled" st)
               (gethash "timedOut" st) (gethash "failed" st)))))

(defun infuse-complete ()
  "Ask for a suggestion at point: ghost text where lsp-mode has it."
  (interactive)
  (if (fboundp 'lsp-inline-completion-display)
      (lsp-inline-completion-display)
    (completion-at-point)))

(defun infuse--configure ()
  "Set up an lsp-mode buffer that infuse serves."
  (when (and (memq 'infuse (mapcar (lambda (w) (lsp--client-server-id (lsp--workspace-client w)))
                                  (lsp-workspaces)))
             (boundp 'lsp-inline-completion-idle-delay))
    (setq-local lsp-inline-completion-idle-delay infuse-inline-idle-delay)))

(defun infuse-lsp-register ()
  "Register infuse with lsp-mode as an add-on client."
  (require 'lsp-mode)
  ;; Ghost text (lsp-mode 9.0.1+): turned on for buffers whose server offers
  ;; textDocument/inlineCompletion, as infuse does.
  (require 'lsp-inline-completion nil t)
  (lsp-register-client
   (make-lsp-client
    :new-connection (lsp-stdio-connection (lambda () (cons (or (infuse--executable) (car infuse-command))
                                                           (cdr infuse-command)))
                                          #'infuse--executable)
    :activation-fn (lambda (_file mode) (infuse--wanted-p mode))
    :language-id #'infuse--language-id
    :server-id 'infuse
    :add-on? t
    :priority -2
    :completion-in-comments? t
    :initialization-options #'infuse--section
    :initialized-fn (lambda (workspace)
                      (let ((lsp--cur-workspace workspace))
                        (lsp-notify "workspace/didChangeConfiguration"
                                    (list :settings (infuse--section)))))))
  ;; lsp-mode sends every registered setting when any of them changes, and
  ;; answers workspace/configuration from them: give it infuse's, so that
  ;; such a push or pull carries the `infuse' section.
  (lsp-register-custom-settings
   (mapcar (lambda (key)
             (list (concat "infuse." key) (lambda () (gethash key (infuse-settings)))))
           '("model" "device" "mode" "maxTokens" "enable" "debounceMs" "timeoutMs"
             "prefixChars" "suffixChars" "holeMarkers")))
  (add-hook 'lsp-configure-hook #'infuse--configure))

(declare-function lsp-register-custom-settings "lsp-mode")

(with-eval-after-load 'lsp-mode
  (infuse-lsp-register))

;;; eglot

(defun infuse-eglot-contact (&optional _interactive)
  "The eglot server program for infuse, with the current settings.
Use it in `eglot-server-programs':

  (add-to-list \\='eglot-server-programs
               \\='((python-mode go-mode) . infuse-eglot-contact))

Eglot runs one server per buffer, so infuse then replaces the language's
own server there."
  (append (list (or (infuse--executable) (car infuse-command)))
          (cdr infuse-command)
          (list :initializationOptions (infuse--section))))

(provide 'infuse)
;;; infuse.el ends here
