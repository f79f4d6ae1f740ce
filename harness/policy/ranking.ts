import type { IntentPolicy, LexicalPolicy, RankingPolicy } from '../../domain/ranking.ts';

/**
 * Reuse-or-forge (seed 002). Re-ranking orders candidates by
 *   (0.7 similarity + 0.2 success rate + 0.03 usage + 0.15 intent fit + 0.1 value fit) / 1.18
 * — usage only breaks near-ties (the most used tool gains at most 0.03, about 0.04 of similarity:
 * a tool that fits the words better is not buried under a popular neighbour), and a tool that does
 * what the request wants done (restart, not read the logs) climbs over one that does not.
 * Value fit is the share of the request's kinds of value (a host name, an IP or e-mail address, a
 * URL, a date, a currency code) the tool's parameters take; a request that carries none leaves the
 * part out (the mean is then over 1.08). At 0.1 a tool that takes every value gains about 0.14 of
 * similarity over one that takes none: enough to lift `dns_record_create` over twenty CRM
 * `*_record_create` tools that share its words for "create an A record pointing api.example.com to
 * 203.0.113.7", not enough to bury a clearly better worded tool. (0.05 to 0.2 rank the discovery
 * evaluation and the bench's 10,000 tools alike.)
 * The thresholds, on the similarity, decide:
 *   similarity >= 0.80         reuse
 *   0.65 <= similarity < 0.80  reuse only when the request's parameters fit the tool's input schema
 *   similarity <  0.65         forge a new tool
 * and below 0.85 a reuse is only proposed, to be confirmed (seed 000: the "let's weather this
 * outage" false positive). What each number means, and the bounds it must stay within, are
 * domain/ranking.ts's.
 */
export const ranking: RankingPolicy = {
  weights: { similarity: 0.7, successRate: 0.2, usage: 0.03, intent: 0.15, values: 0.1 },
  reuseAt: 0.8,
  considerAt: 0.65,
  confirmBelow: 0.85,
  /** a freshly forged tool just passed its tests: it starts as if 80% of runs succeeded, worth 2 runs */
  priorSuccessRate: 0.8,
  priorWeight: 2,
};

/** Retrieval similarity from the request's words (no embeddings). */
export const lexical: LexicalPolicy = {
  priorDocuments: 8,
  fieldWeights: { name: 1, description: 0.8, params: 0.6 },
  fuzzyMin: 0.7,
  fuzzyWeight: 0.7,
  /**
   * At 1.45 a word found in exactly one tool alone reaches the 0.65..0.80 band — 0.69 in the
   * description, 0.77 in the name — where the parameters must fit too; it takes two to clear 0.80
   * (0.90). That is what keeps "let's weather this outage" from a reuse: one word, nothing to fill
   * the city with. A word found only among the parameters (0.58) is not enough on its own.
   */
  steepness: 1.45,
  /**
   * "wether", "restrat", "lsit": one slip in a word of 4+ letters; a wrong letter only from 5
   * ("book" is not a typo of "look").
   */
  typo: { minLength: 4, substitutionFrom: 5 },
  /**
   * Cheap help for requests in other languages and shorthand: the words a catalog of English
   * descriptions uses for them. Verbs here also tell what the request wants done.
   */
  aliases: {
    // shorthand
    cert: 'certificate',
    certs: 'certificates',
    repo: 'repository',
    msg: 'message',
    // German
    wetter: 'weather',
    vorhersage: 'forecast',
    wettervorhersage: 'weather forecast',
    temperatur: 'temperature',
    regen: 'rain',
    wahrung: 'currency',
    wechselkurs: 'exchange rate',
    umrechnen: 'convert',
    zertifikat: 'certificate',
    ablauf: 'expiry',
    ablaufdatum: 'expiry date',
    eintrag: 'record',
    eintrage: 'records',
    protokolle: 'logs',
    nachricht: 'message',
    anzeigen: 'show',
    zeigen: 'show',
    auflisten: 'list',
    prufen: 'check',
    uberprufen: 'check',
    zusammenfassen: 'summarize',
    loschen: 'delete',
    entfernen: 'remove',
    erstellen: 'create',
    anlegen: 'create',
    hinzufugen: 'add',
    andern: 'change',
    aktualisieren: 'update',
    senden: 'send',
    schicken: 'send',
    neustarten: 'restart',
    erneuern: 'renew',
    verlangern: 'renew',
    ubertragen: 'transfer',
    kundigen: 'cancel',
    stornieren: 'cancel',
    // French
    meteo: 'weather',
    prevision: 'forecast',
    previsions: 'forecast',
    devise: 'currency',
    certificat: 'certificate',
    conteneur: 'container',
    journaux: 'logs',
    afficher: 'show',
    lister: 'list',
    verifier: 'check',
    resumer: 'summarize',
    supprimer: 'delete',
    effacer: 'delete',
    creer: 'create',
    ajouter: 'add',
    modifier: 'change',
    envoyer: 'send',
    redemarrer: 'restart',
    renouveler: 'renew',
    transferer: 'transfer',
    annuler: 'cancel',
    // Spanish, Italian, Portuguese
    tiempo: 'weather',
    pronostico: 'forecast',
    previsione: 'forecast',
    moneda: 'currency',
    valuta: 'currency',
    certificado: 'certificate',
    certificato: 'certificate',
    contenedor: 'container',
    mostrar: 'show',
    listar: 'list',
    borrar: 'delete',
    eliminar: 'delete',
    cancellare: 'delete',
    crear: 'create',
    creare: 'create',
    criar: 'create',
    enviar: 'send',
    inviare: 'send',
    reiniciar: 'restart',
    riavviare: 'restart',
    renovar: 'renew',
    rinnovare: 'renew',
    transferir: 'transfer',
    cancelar: 'cancel',
  },
};

/**
 * What a request wants done (domain/ranking.ts actionIntent): a request for a change never reuses
 * a tool that only reads, or one that makes another change. Verbs in their base form; a verb counts
 * at the start of a clause or after a lead-in ("please restart", "can you delete", "need to renew").
 */
export const intent: IntentPolicy = {
  actions: {
    delete: {
      destructive: true,
      verbs: [
        'delete',
        'remove',
        'erase',
        'purge',
        'wipe',
        'destroy',
        'drop',
        'trash',
        'clear',
        'uninstall',
        'unpublish',
        'revoke',
        'deregister',
        'unregister',
        'nuke',
        'get rid of',
        'tear down',
        'take down',
      ],
      notBefore: [],
    },
    cancel: {
      destructive: true,
      verbs: [
        'cancel',
        'stop',
        'abort',
        'halt',
        'kill',
        'terminate',
        'shut down',
        'turn off',
        'switch off',
        'disable',
        'suspend',
        'pause',
        'unsubscribe',
        'close',
      ],
      notBefore: [],
    },
    transfer: { destructive: true, verbs: ['transfer', 'hand over', 'migrate'], notBefore: [] },
    restart: { destructive: false, verbs: ['restart', 'reboot', 'bounce', 'relaunch', 'respawn', 'reload', 'power cycle'], notBefore: [] },
    start: {
      destructive: false,
      verbs: [
        'start',
        'launch',
        'boot',
        'enable',
        'resume',
        'unpause',
        'spin up',
        'turn on',
        'switch on',
        'deploy',
        'redeploy',
        'roll out',
        'roll back',
        'rollback',
        'scale',
      ],
      notBefore: [],
    },
    create: {
      destructive: false,
      verbs: [
        'create',
        'add',
        'make',
        'build',
        'generate',
        'set up',
        'setup',
        'insert',
        'register',
        'provision',
        'open',
        'write',
        'draft',
        'compose',
        'install',
        'upload',
        'import',
        'publish',
        'schedule',
        'back up',
        'copy',
        'duplicate',
        'clone',
        'fork',
        'save',
      ],
      notBefore: [],
    },
    update: {
      destructive: false,
      verbs: [
        'update',
        'change',
        'modify',
        'edit',
        'set',
        'rename',
        'move',
        'replace',
        'patch',
        'adjust',
        'bump',
        'upgrade',
        'downgrade',
        'increase',
        'decrease',
        'reset',
        'restore',
        'fix',
        'mark',
        'assign',
        'resize',
        'merge',
        'approve',
        'reject',
        'archive',
        'lock',
        'unlock',
        'block',
        'unblock',
        'grant',
        'invite',
        'ban',
        'reopen',
      ],
      notBefore: [],
    },
    send: {
      destructive: false,
      verbs: [
        'send',
        'post',
        'notify',
        'tell',
        'message',
        'email',
        'mail',
        'text',
        'dm',
        'announce',
        'share',
        'forward',
        'reply',
        'broadcast',
        'alert',
        'inform',
        'tweet',
      ],
      // "tell me", "send us the list": the person asks to be told
      notBefore: ['me', 'us'],
    },
    renew: { destructive: false, verbs: ['renew', 'extend', 'prolong', 'reissue', 'rotate'], notBefore: [] },
    purchase: { destructive: false, verbs: ['buy', 'purchase', 'order', 'pay', 'book', 'reserve', 'subscribe'], notBefore: [] },
  },
  reads: [
    'list',
    'show',
    'display',
    'get',
    'fetch',
    'read',
    'check',
    'verify',
    'look up',
    'lookup',
    'find',
    'search',
    'count',
    'tail',
    'summarize',
    'summarise',
    'convert',
    'compare',
    'monitor',
    'inspect',
    'view',
    'see',
    'describe',
    'explain',
    'calculate',
    'query',
    'resolve',
    'ping',
    'test',
    'measure',
    'estimate',
    'translate',
    'analyse',
    'analyze',
    'review',
    'audit',
    'dump',
    'what',
    'which',
    'who',
    'whos',
    'whose',
    'when',
    'where',
    'why',
    'how',
    'is',
    'are',
    'was',
    'were',
    'does',
    'do',
    'did',
    'has',
    'have',
    'will',
  ],
  leadIns: [
    'please',
    'pls',
    'plz',
    'kindly',
    'can',
    'could',
    'would',
    'will',
    'shall',
    'should',
    'must',
    'you',
    'u',
    'i',
    'we',
    'let',
    'us',
    'me',
    'to',
    'and',
    'or',
    'then',
    'also',
    'just',
    'now',
    'quickly',
    'first',
    'finally',
    'ok',
    'okay',
    'hey',
    'hi',
    'so',
    'go',
    'need',
    'want',
    'gotta',
    'try',
    'help',
    'asap',
  ],
  negations: ['not', "don't", 'dont', 'never', 'no', 'without', "doesn't", "didn't", "can't", 'cannot', "won't", "shouldn't", 'nor'],
};

export const retrieval = {
  /**
   * Meaning, when an embedder is configured: the `nearest` tools by cosine join the words' shortlist
   * (a tool no word of the request names can still be found), and each candidate's order moves by
   * weight × (cosine − center), center being about what an unrelated request and tool score (~0.2
   * for the local all-MiniLM-L6-v2). The decision's bands read the words' similarity alone: cosines
   * of different models are not on one scale, and a blend pulled every similarity under the bands
   * (docs/benchmarks.md, session 12). Weight 0.3 keeps top-1 at 10,000 tools what it is on the
   * evaluation catalog alone; 0.5 and more let near neighbours overtake (session 13's grid).
   */
  dense: { weight: 0.3, center: 0.2, nearest: 10 },
  /** search hits the reuse-or-forge decision weighs, and the most an agent turn is offered */
  candidates: 5,
  /** below this similarity a hit is noise to the model: it is not offered */
  offerAt: 0.3,
  intent,
};
